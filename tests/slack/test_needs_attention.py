"""How an order in ``needs_attention`` reads in Slack: a clear label and what happens next."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gatebot.slack.blocks.common import status_display
from gatebot.slack.blocks.messages import status_explanation
from gatebot.store.models import Order, OrderStatus


def test_needs_attention_says_it_stopped_and_who_acts() -> None:
    now = datetime(2026, 11, 24, 9, tzinfo=UTC)
    order = Order(id=2, external_ref="B", idempotency_key="gbk_x", product_id=101, product_name="Steam 20",
                  product_type="redeem_card", currency="USD", estimated_cost=Decimal("20.00"),
                  requester="U1", created_at=now, updated_at=now, status=OrderStatus.NEEDS_ATTENTION,
                  status_reason="Gate answered with order g-1, which our order #1 already holds.",
                  error_code="gate_order_id_taken")
    assert status_display(order.status) == (":warning:", "Needs attention")
    text = status_explanation(order)
    assert "Nothing more is sent automatically; an admin has to settle it." in text
    assert "our order #1 already holds" in text and "gate_order_id_taken" in text
