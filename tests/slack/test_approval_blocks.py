"""The approval request's builders: masking, the decided message without buttons, the reject modal's metadata;
the same for a bulk batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gatebot.bulk.lifecycle import EXPIRY_ACTOR
from gatebot.money import Money
from gatebot.slack import ids
from gatebot.slack.blocks.approvals import (
    ApprovalFacts,
    BatchFacts,
    approval_request,
    batch_approval_request,
    batch_outcome_dm,
    batch_reject_modal,
    home_approval_blocks,
    masked,
    reject_modal,
    reject_target,
)
from gatebot.slack.blocks.limits import check_message, check_view
from gatebot.store.models import Batch, BatchStatus, Order, OrderStatus

NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)


def order(**kw: Any) -> Order:
    values: dict[str, Any] = {
        "id": 7, "external_ref": "R", "idempotency_key": "gbk_x", "product_id": 101, "product_name": "Steam 20",
        "product_type": "redeem_card", "currency": "USD", "estimated_cost": Decimal("600.00"), "quantity": 30,
        "requester": "UBOB", "created_at": NOW, "updated_at": NOW, "status": OrderStatus.AWAITING_APPROVAL,
        "approval_expires_at": NOW + timedelta(hours=24),
        "status_reason": "Needs approval: it costs USD 600.00, over the approval threshold of USD 500.00."}
    values.update(kw)
    return Order(**values)


def test_masked_keeps_two_characters_at_each_end_and_hides_short_values() -> None:
    assert masked("player_123") == "pl•••23"
    assert masked("abc12") == "•••"
    assert masked(masked("player_123")) == "pl•••23"


def test_open_request_has_the_buttons_and_a_decided_one_says_who_and_why() -> None:
    facts = ApprovalFacts(balance=Money(Decimal("5000"), "USD"),
                          spend=["USD 600.00 of USD 1,000.00 (personal daily limit)"])
    open_msg = approval_request(order(), facts)
    check_message(open_msg)
    text = str(open_msg["blocks"])
    assert "USD 5,000.00 → USD 4,400.00" in text and "over the approval threshold" in text
    assert ids.APPROVAL_APPROVE in text and ids.APPROVAL_REJECT in text

    rejected = approval_request(order(status=OrderStatus.REJECTED, decided_by="UDAN", decided_at=NOW,
                                      decision_reason="<!channel> no", error_code="approval_rejected"), facts)
    check_message(rejected)
    text = str(rejected["blocks"])
    assert ids.APPROVAL_APPROVE not in text and "Rejected* by <@UDAN>" in text
    assert "&lt;!channel&gt; no" in text, "the reason is escaped"


def test_the_reject_modal_carries_only_the_order_id() -> None:
    view = reject_modal(order())
    check_view(view)
    assert reject_target(view) == ("order", 7)
    assert reject_target({"private_metadata": "not json"}) is None
    assert reject_target({"private_metadata": '{"order": "7"}'}) is None


def batch(**kw: Any) -> Batch:
    values: dict[str, Any] = {
        "id": 12, "requester": "UBOB", "status": BatchStatus.AWAITING_APPROVAL, "source_name": "june.csv",
        "source_digest": "x", "rows": 40, "totals_json": '{"USD": "800.00", "EUR": "90.00"}',
        "approval_reason": "the batch's USD total is USD 800.00, over the approval threshold of USD 500.00",
        "approval_expires_at": NOW + timedelta(hours=24), "created_at": NOW, "updated_at": NOW}
    values.update(kw)
    return Batch(**values)


FACTS = BatchFacts(balances={"USD": Money(Decimal("5000"), "USD"), "EUR": None},
                   products=[("Steam 20", 30), ("Steam Wallet top-up", 10)])


def test_a_batch_request_shows_rows_products_totals_and_balances_with_buttons_naming_the_batch() -> None:
    open_ = batch_approval_request(batch(), FACTS)
    check_message(open_)
    text = str(open_["blocks"])
    assert "Approval needed: batch B12" in text and "*40 orders*" in text and "over the approval threshold" in text
    assert "Steam 20 × 30" in text and "Steam Wallet top-up × 10" in text
    assert "USD 5,000.00 → USD 4,200.00" in text and "EUR: unknown" in text and "EUR 90.00" in text
    buttons = [e for b in open_["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in buttons] == [(ids.APPROVAL_APPROVE, "B12"),
                                                                (ids.APPROVAL_REJECT, "B12")]

    rejected = batch(status=BatchStatus.REJECTED, decided_by="UDAN", decided_at=NOW, decision_reason="not now")
    text = str(batch_approval_request(rejected, FACTS)["blocks"])
    assert ids.APPROVAL_APPROVE not in text and "Rejected* by <@UDAN>" in text and "not now" in text
    assert "not now" in str(batch_outcome_dm(rejected)["blocks"])
    expired = batch(status=BatchStatus.REJECTED, decided_by=EXPIRY_ACTOR, decided_at=NOW)
    assert "*Expired*" in str(batch_approval_request(expired, FACTS)["blocks"])
    assert "expired without approval" in batch_outcome_dm(expired)["text"]
    approved = batch(status=BatchStatus.RUNNING, decided_by="UDAN", decided_at=NOW)
    assert "Approved* by <@UDAN>" in str(batch_approval_request(approved, FACTS)["blocks"])
    assert "was approved" in batch_outcome_dm(approved)["text"]


def test_the_reject_modal_of_a_batch_names_the_batch() -> None:
    view = batch_reject_modal(batch())
    check_view(view)
    assert reject_target(view) == ("batch", 12)
    assert reject_target({"private_metadata": '{"batch": true}'}) is None


def test_home_lists_batch_requests_first_within_the_row_limit() -> None:
    blocks = home_approval_blocks([order(id=i) for i in range(1, 5)], [], approver=True,
                                  waiting_batches=[batch(id=i) for i in range(1, 4)], my_batches=[batch(id=9)])
    text = str(blocks)
    assert "Waiting for your approval* (7)" in text and "Your requests* (1)" in text
    assert text.index("Batch B1") < text.index("#1") and "#3" not in text  # 3 batches + 2 orders shown
    assert "More with" in text
