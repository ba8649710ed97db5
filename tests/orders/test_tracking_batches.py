"""Gate answers applied a page at a time (one unit of work) store exactly what applying them one by one
stores: statuses, reasons, amounts, encrypted codes, history and events (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, text
from sqlmodel import Session

from gatebot import gate
from gatebot.orders import OrderDraft, new_idempotency_key
from gatebot.store import repo
from gatebot.store.models import Order, OrderStatus

from .conftest import Pipeline

#: name -> (our status before, Gate's answer: status, content)
CASES: dict[str, tuple[OrderStatus, str, dict[str, Any] | None]] = {
    "delivered": (OrderStatus.PENDING, "completed", {"voucher_code": "ABCD-1234-EFGH"}),
    "failed": (OrderStatus.PENDING, "failed", None),
    "content while pending": (OrderStatus.PENDING, "pending", {"vendor_id": "V-778899"}),
    "still pending": (OrderStatus.PENDING, "pending", None),
    "recorded by another process": (OrderStatus.COMPLETED, "failed", None),
    "answer lost, then tracked": (OrderStatus.UNKNOWN, "completed", {"voucher_code": "ZZZZ-0000-YYYY"}),
}


def seed(p: Pipeline, prefix: str) -> dict[str, Order]:
    """One order per case, holding Gate id ``<prefix>-<n>``."""
    now = p.clock.now()
    orders: dict[str, Order] = {}
    with p.db.session() as s:
        for n, (name, (status, _, _)) in enumerate(CASES.items()):
            order = Order(external_ref=f"{prefix}-{n}", idempotency_key=new_idempotency_key(),
                          gate_order_id=f"{prefix}-{n}", product_id=101, product_name="Steam Gift Card 20 USD",
                          product_type="redeem_card", currency="USD", quantity=1, status=status,
                          requester="U123", created_at=now, updated_at=now)
            order.set_secret_fields(p.service.cipher, body={"product_id": 101, "external_ref": f"{prefix}-{n}"})
            orders[name] = repo.add_order(s, order)
    return orders


def answers(orders: dict[str, Order], *, gate_ids: dict[str, str] | None = None) -> list[tuple[int, gate.Order]]:
    at = orders["delivered"].created_at + timedelta(seconds=90)
    out = []
    for name, (_, status, content) in CASES.items():
        order = orders[name]
        gate_id = (gate_ids or {}).get(name, order.gate_order_id)
        assert order.id is not None and gate_id is not None
        out.append((order.id, gate.Order(
            id=gate_id, status=status, order_content=content, currency_code="USD",
            charged_amount=Decimal("20.00"), balance_before=Decimal("100.00"), balance_after=Decimal("80.00"),
            completed_at=at if status == "completed" else None, failed_at=at if status == "failed" else None)))
    return out


def stored(p: Pipeline, orders: dict[str, Order]) -> dict[str, Any]:
    """Everything recorded about the orders, without what differs between the two sets (ids, refs)."""
    out: dict[str, Any] = {}
    with p.db.session() as s:
        for name, seeded in orders.items():
            o = repo.get_order(s, seeded.id or 0)
            assert o is not None
            out[name] = (o.status, o.status_reason, o.error_code, o.charged_amount, o.balance_before,
                         o.balance_after, o.submitted_at, o.completed_at, o.failed_at, o.next_attempt_at,
                         o.updated_at, o.gate_order_id is None, o.content(p.service.cipher),
                         [(h.from_status, h.to_status, h.actor, h.note, h.at) for h in repo.history(s, o.id or 0)])
    return out


def events_of(p: Pipeline, orders: dict[str, Order]) -> list[tuple[str, str]]:
    names = {o.id: name for name, o in orders.items()}
    return [(names[e.order_id], e.kind) for e in p.events if e.order_id in names]


@contextmanager
def commits() -> Iterator[list[Session]]:
    """The sessions committed inside the block, one entry per commit."""
    seen: list[Session] = []

    def counted(session: Session) -> None:
        seen.append(session)

    event.listen(Session, "after_commit", counted)
    try:
        yield seen
    finally:
        event.remove(Session, "after_commit", counted)


async def one_by_one(p: Pipeline, page: list[tuple[int, gate.Order]]) -> None:
    for order_id, g in page:
        await p.service._apply_gate_order(order_id, g, actor="system:tracker")


async def test_a_page_of_mixed_answers_is_stored_as_one_by_one_stores_it(pipeline: Pipeline) -> None:
    p = pipeline
    batched, single = seed(p, "A"), seed(p, "B")
    with commits() as committed:
        applied = await p.service._apply_gate_orders(answers(batched), actor="system:tracker")
    assert len(committed) == 1, "a page of answers is one unit of work"
    assert [o.id for o in applied] == [o.id for o in batched.values()]
    await one_by_one(p, answers(single))

    assert stored(p, batched) == stored(p, single)
    assert events_of(p, batched) == events_of(p, single) == [
        ("delivered", "order.completed"), ("failed", "order.failed"),
        ("answer lost, then tracked", "order.completed")]
    result = stored(p, batched)
    assert result["delivered"][0] is OrderStatus.COMPLETED and result["failed"][0] is OrderStatus.FAILED
    assert result["delivered"][12] == {"voucher_code": "ABCD-1234-EFGH"}
    assert result["content while pending"][0] is OrderStatus.PENDING
    assert result["content while pending"][12] == {"vendor_id": "V-778899"}
    assert result["recorded by another process"][0] is OrderStatus.COMPLETED  # never moves backwards
    with p.db.session() as s:  # codes are stored encrypted only
        raw = s.execute(text("SELECT order_content_enc FROM orders WHERE id = :id"),
                        {"id": batched["delivered"].id}).scalar()
    assert raw and "ABCD-1234-EFGH" not in raw


async def test_a_taken_gate_id_in_a_page_needs_attention_and_the_rest_is_applied(pipeline: Pipeline) -> None:
    p = pipeline
    batched, single = seed(p, "A"), seed(p, "B")
    # Gate answers for "delivered" with the id our "failed" order holds.
    await p.service._apply_gate_orders(answers(batched, gate_ids={"delivered": "A-1"}), actor="system:tracker")
    await one_by_one(p, answers(single, gate_ids={"delivered": "B-1"}))

    after, expected = stored(p, batched), stored(p, single)
    taken = after.pop("delivered")
    assert taken[:3] == (OrderStatus.NEEDS_ATTENTION, taken[1], "gate_order_id_taken")
    assert f"our order #{batched['failed'].id} already holds" in (taken[1] or "")
    assert taken[12] is None  # nothing of Gate's answer was recorded on it
    assert expected.pop("delivered")[0] is OrderStatus.NEEDS_ATTENTION
    assert after == expected
    assert events_of(p, batched) == events_of(p, single)


async def test_a_status_changed_meanwhile_keeps_the_other_writers_status(pipeline: Pipeline) -> None:
    p = pipeline
    orders = seed(p, "A")
    target = orders["failed"]
    raced: list[bool] = []

    def other_writer_first(session: Session, *_: object) -> None:
        if not raced:  # between our read and our write, another process completes one of the page's orders
            raced.append(True)
            with p.db.session() as other:
                theirs = repo.get_order(other, target.id or 0)
                assert theirs is not None
                repo.set_status(other, theirs, OrderStatus.COMPLETED, actor="other", now=p.clock.now())

    event.listen(Session, "before_flush", other_writer_first)
    try:
        await p.service._apply_gate_orders(answers(orders), actor="system:tracker")
    finally:
        event.remove(Session, "before_flush", other_writer_first)
    assert raced
    result = stored(p, orders)
    assert result["failed"][0] is OrderStatus.COMPLETED and result["failed"][13][-1][2] == "other"
    assert result["delivered"][0] is OrderStatus.COMPLETED
    assert result["answer lost, then tracked"][0] is OrderStatus.COMPLETED
    assert ("failed", "order.failed") not in events_of(p, orders)


async def test_tracking_commits_once_per_page_of_changes(pipeline: Pipeline) -> None:
    p = pipeline
    p.sim.set_balance("USD", "100000.00")
    for _ in range(150):
        await p.service.place(OrderDraft(product=101, requester="U123"))
    p.clock.advance(timedelta(seconds=91))
    with commits() as committed:
        result = await p.service.track()
    assert result.changed == 150
    assert len(committed) == 1 + 2  # reading the pending orders, then two pages of 100 and 50 answers
