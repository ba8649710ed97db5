"""Inconsistencies the pipeline must surface instead of crashing: a Gate order id that another of our
orders already holds, and two intents racing for the same ``external_ref`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging

import pytest

from gatebot.orders import OrderDraft, OrderInvalid
from gatebot.store import repo
from gatebot.store.models import Order, OrderStatus

from .conftest import Pipeline

STEAM_20 = 101


def draft(**kw: object) -> OrderDraft:
    kw.setdefault("requester", "U123")
    return OrderDraft(product=STEAM_20, **kw)  # type: ignore[arg-type]


async def test_a_gate_order_id_held_by_another_order_needs_attention(
        pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    first = await pipeline.service.place(draft(external_ref="A"))
    assert first.status == OrderStatus.PENDING and first.gate_order_id
    pipeline.sim.reset()  # a fresh Gate account hands out the same order ids again

    caplog.set_level(logging.WARNING, "gatebot.orders")
    second = await pipeline.service.place(draft(external_ref="B"))

    assert second.status == OrderStatus.NEEDS_ATTENTION
    assert second.gate_order_id is None
    assert first.gate_order_id in (second.status_reason or "")
    assert "#1" in (second.status_reason or "")
    assert second.error_code == "gate_order_id_taken"
    with pipeline.db.session() as s:
        kept = repo.get_order(s, first.id or 0)
    assert kept is not None and kept.gate_order_id == first.gate_order_id  # the first keeps its id
    assert any("already held by order #1" in r.getMessage() for r in caplog.records)
    assert [e.kind for e in pipeline.events][-1] == "order.needs_attention"


async def test_recover_moves_a_conflicting_order_aside_and_goes_on(pipeline: Pipeline) -> None:
    await pipeline.service.place(draft(external_ref="A"))
    pipeline.sim.reset()
    svc = pipeline.service
    # Two intents left behind by a crash: the first will collide, the second must still be sent.
    b = await svc.save_intent(await svc.quote(draft(external_ref="B")), draft(external_ref="B"))
    c = await svc.save_intent(await svc.quote(draft(external_ref="C")), draft(external_ref="C"))

    assert await svc.recover(everything=True) == 2

    with pipeline.db.session() as s:
        b_after, c_after = repo.get_order(s, b.id or 0), repo.get_order(s, c.id or 0)
    assert b_after is not None and b_after.status == OrderStatus.NEEDS_ATTENTION
    assert c_after is not None and c_after.status == OrderStatus.PENDING
    assert await svc.recover(everything=True) == 0  # nothing more is sent for it
    assert (await svc.track()).checked == 2


async def test_two_intents_racing_for_one_external_ref(pipeline: Pipeline) -> None:
    svc = pipeline.service
    # Both validated before either is saved: the lost race must read like a sequential duplicate.
    q1, q2 = await svc.quote(draft(external_ref="SAME")), await svc.quote(draft(external_ref="SAME"))
    winner = await svc.save_intent(q1, draft(external_ref="SAME"))
    with pytest.raises(OrderInvalid) as lost:
        await svc.save_intent(q2, draft(external_ref="SAME"))
    with pytest.raises(OrderInvalid) as sequential:
        await svc.quote(draft(external_ref="SAME"))
    assert lost.value.errors == sequential.value.errors
    assert lost.value.errors["external_ref"].startswith(f"SAME is already used by order #{winner.id}")
    with pipeline.db.session() as s:
        assert len(repo.list_orders(s)) == 1


async def test_a_catalog_loaded_by_another_process_at_the_same_time(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import event, text
    from sqlmodel import Session

    with pipeline.db.session() as s:
        s.execute(text("DELETE FROM catalog_products"))
    products = [p async for p in pipeline.service.gate.iter_products(page_size=100)]
    types = {t.id: t.code for t in await pipeline.service.gate.list_product_types()}
    raced: list[bool] = []

    def other_process_first(session: Session, *_: object) -> None:
        # Between our read of the (empty) catalog and our inserts, another process inserts it all.
        if not raced:
            raced.append(True)
            with pipeline.db.session() as other:
                repo.replace_catalog(other, products, types, now=pipeline.clock.now())

    event.listen(Session, "before_flush", other_process_first)
    try:
        assert await pipeline.service.refresh_catalog() == len(products)
    finally:
        event.remove(Session, "before_flush", other_process_first)
    assert raced
    assert await pipeline.service.product(STEAM_20) is not None


async def test_a_gate_order_id_recorded_by_another_order_at_the_same_time(pipeline: Pipeline) -> None:
    from sqlalchemy import event, text
    from sqlmodel import Session

    first = await pipeline.service.place(draft(external_ref="A"))
    pipeline.sim.reset()
    with pipeline.db.session() as s:  # as if the first order's answer were still being recorded
        s.execute(text("UPDATE orders SET gate_order_id = NULL WHERE id = :id"), {"id": first.id})
    recorded: list[bool] = []

    def first_order_recorded_meanwhile(session: Session, *_: object) -> None:
        # Fires when the second order's Gate id is about to be written: the first one's lands just before.
        if not recorded and any(isinstance(o, Order) and o.gate_order_id for o in session.dirty):
            recorded.append(True)
            with pipeline.db.session() as other:
                other.execute(text("UPDATE orders SET gate_order_id = :g WHERE id = :id"),
                              {"g": first.gate_order_id, "id": first.id})

    event.listen(Session, "before_flush", first_order_recorded_meanwhile)
    try:
        second = await pipeline.service.place(draft(external_ref="B"))
    finally:
        event.remove(Session, "before_flush", first_order_recorded_meanwhile)
    assert recorded
    assert second.status == OrderStatus.NEEDS_ATTENTION and second.gate_order_id is None
