"""How an order awaiting approval, rejected by an approver or expired reads in Slack (issue 13): a label and
one line of what happens next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gatebot.slack.blocks.common import status_display
from gatebot.slack.blocks.messages import status_explanation
from gatebot.store.models import Order, OrderStatus

NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)


def order(status: OrderStatus, **kw: Any) -> Order:
    return Order(id=3, external_ref="C", idempotency_key="gbk_x", product_id=101, product_name="Steam 20",
                 product_type="redeem_card", currency="USD", estimated_cost=Decimal("60.00"), requester="U123",
                 created_at=NOW, updated_at=NOW, status=status, **kw)


def test_awaiting_approval_says_nothing_is_sent_until_someone_else_approves() -> None:
    o = order(OrderStatus.AWAITING_APPROVAL, approval_expires_at=NOW + timedelta(hours=24),
              status_reason="Needs approval: it costs USD 60.00, over the approval threshold of USD 40.00.")
    assert status_display(o.status) == (":raised_hand:", "Waiting for approval")
    assert status_explanation(o) == (
        "It needs approval: it costs USD 60.00, over the approval threshold of USD 40.00. Nothing is sent to "
        "Gate until an approver other than <@U123> approves it. The request expires "
        "<!date^1795597200^{date_short_pretty} {time}|2026-11-25 09:00 UTC>.")


def test_rejected_by_an_approver_and_expired_are_not_blamed_on_gate() -> None:
    rejected = order(OrderStatus.REJECTED, error_code="approval_rejected",
                     status_reason="Rejected by U7: over budget. Nothing was sent to Gate.")
    assert status_explanation(rejected) == "Rejected by U7: over budget. Nothing was sent to Gate."
    expired = order(OrderStatus.REJECTED, error_code="approval_expired", status_reason="expired")
    assert "Gate rejected" not in status_explanation(expired)
    assert status_explanation(expired).startswith("The approval request expired before anyone approved it.")
