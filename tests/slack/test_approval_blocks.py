"""The approval request's builders: masking, the decided message without buttons, the reject modal's metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gatebot.money import Money
from gatebot.slack import ids
from gatebot.slack.blocks.approvals import (
    ApprovalFacts,
    approval_request,
    masked,
    reject_modal,
    reject_order_id,
)
from gatebot.slack.blocks.limits import check_message, check_view
from gatebot.store.models import Order, OrderStatus

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
    assert reject_order_id(view) == 7
    assert reject_order_id({"private_metadata": "not json"}) is None
    assert reject_order_id({"private_metadata": '{"order": "7"}'}) is None
