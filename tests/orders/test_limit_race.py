"""Daily limits hold when orders are placed at the same moment (issue 13), on SQLite and PostgreSQL.

The quote's check runs before the intent is saved, so two orders can both pass it; the check that counts
runs again inside the unit of work that saves the intent, under the store's spending lock. Each test lets
both orders pass their quote first (a barrier), then lets them race for the save.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session

from gatebot.config import SpendLimit
from gatebot.money import Money
from gatebot.orders import ApprovalPolicy, OrderDraft, OrderInvalid, OrderService, Quote
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import Order, OrderStatus

from .conftest import Pipeline

STEAM_20 = 101  # voucher USD 20
OPS = frozenset({"ops"})
LIMIT_40 = "This order (USD 40.00) would go over {whose} of USD 40.00: USD 40.00 used in the last 24 hours, " \
           "USD 0.00 remains. Ask finance to raise it, or order less."


def draft(requester: str = "U123", roles: frozenset[str] = frozenset()) -> OrderDraft:
    return OrderDraft(product=STEAM_20, quantity=2, requester=requester, requester_roles=roles)  # USD 40


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def policy(service: OrderService, **kw: Any) -> None:
    service.approval_policy = dataclasses.replace(ApprovalPolicy(), **kw)


def after_both_quotes(monkeypatch: pytest.MonkeyPatch, *services: OrderService) -> None:
    """Each ``place`` waits, once quoted, until the other one is quoted too: both pass the quote's check."""
    barrier = asyncio.Barrier(2)
    for service in services:
        def hold(real: Callable[..., Awaitable[Quote]]) -> Callable[..., Awaitable[Quote]]:
            async def quote(d: OrderDraft, **kw: Any) -> Quote:
                quoted = await real(d, **kw)
                await barrier.wait()
                return quoted
            return quote
        monkeypatch.setattr(service, "quote", hold(service.quote))


def settle(results: Iterable[Order | BaseException]) -> tuple[list[Order], list[BaseException]]:
    orders = [r for r in results if isinstance(r, Order)]
    return orders, [r for r in results if not isinstance(r, Order)]


def stored(p: Pipeline) -> list[Order]:
    with p.db.session() as s:
        return repo.list_orders(s)


async def test_two_orders_at_the_limit_boundary_one_goes_out_the_other_is_refused(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipeline
    policy(p.service, daily_limits=(SpendLimit(usd("40")),))  # each order alone is exactly at the limit
    after_both_quotes(monkeypatch, p.service)

    results = await asyncio.gather(p.service.place(draft()), p.service.place(draft()), return_exceptions=True)

    [sent], [refused] = settle(results)
    assert sent.status == OrderStatus.PENDING and p.creates() == 1
    assert isinstance(refused, OrderInvalid)
    assert refused.errors == {"limit": LIMIT_40.format(whose="your daily limit")}
    assert [o.id for o in stored(p)] == [sent.id]  # nothing saved for the refused one


async def test_with_the_approval_policy_the_second_waits_for_approval(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipeline
    policy(p.service, daily_limits=(SpendLimit(usd("40")),), over_limit="approval")
    after_both_quotes(monkeypatch, p.service)
    requested: list[str] = []

    async def record(event: Any) -> None:
        requested.append(event.data["reason"])

    p.service.events.subscribe("approval.requested", record)

    results = await asyncio.gather(p.service.place(draft()), p.service.place(draft()), return_exceptions=True)

    orders, errors = settle(results)
    assert errors == [] and p.creates() == 1
    assert sorted(o.status for o in orders) == [OrderStatus.AWAITING_APPROVAL, OrderStatus.PENDING]
    [waiting] = [o for o in orders if o.status == OrderStatus.AWAITING_APPROVAL]
    reason = "it goes over your daily limit of USD 40.00 (USD 40.00 used in the last 24 hours)"
    assert waiting.status_reason == f"Needs approval: {reason}."
    assert requested == [reason]  # the approvers are asked, as when the quote already said so


async def test_a_role_limit_shared_by_two_requesters_holds(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipeline
    policy(p.service, daily_limits=(SpendLimit(usd("40"), role="ops"),))
    after_both_quotes(monkeypatch, p.service)

    results = await asyncio.gather(p.service.place(draft("U1", OPS)), p.service.place(draft("U2", OPS)),
                                   return_exceptions=True)

    [sent], [refused] = settle(results)
    assert p.creates() == 1 and sent.requester in {"U1", "U2"}
    assert isinstance(refused, OrderInvalid)
    assert refused.errors == {"limit": LIMIT_40.format(whose="the ops team's daily limit")}


async def test_two_processes_saving_at_once_take_turns(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two services, each with its own engine (as two gatebot processes): the first to read the spend holds the
    spending lock until its intent is committed; the second reads the spend only then. The spend read waits
    for the other save to have started, so without the lock both would read USD 0.00 used."""
    p = pipeline
    other_db = Database.from_url(p.db.engine.url)
    other = OrderService(db=other_db, gate_client=p.service.gate, cipher=p.service.cipher, clock=p.clock)
    for service in (p.service, other):
        policy(service, daily_limits=(SpendLimit(usd("40")),))
    after_both_quotes(monkeypatch, p.service, other)
    started = {p.db.engine: threading.Event(), other_db.engine: threading.Event()}
    peer = {p.db.engine: started[other_db.engine], other_db.engine: started[p.db.engine]}
    saving = threading.local()  # set in a save's unit of work (the quotes' reads do not wait)
    real_lock, real_spent = repo.lock_spending, repo.spent_since

    def lock_spending(s: Session) -> None:
        started[s.get_bind().engine].set()
        saving.now = True
        real_lock(s)

    def spent_since(s: Session, **kw: Any) -> Decimal:
        spent = real_spent(s, **kw)
        if getattr(saving, "now", False):
            saving.now = False
            assert peer[s.get_bind().engine].wait(timeout=30), "the other save never started"
        return spent

    monkeypatch.setattr(repo, "lock_spending", lock_spending)
    monkeypatch.setattr(repo, "spent_since", spent_since)
    try:
        results = await asyncio.gather(p.service.place(draft()), other.place(draft()), return_exceptions=True)
    finally:
        other_db.dispose()

    [sent], [refused] = settle(results)
    assert p.creates() == 1 and sent.status == OrderStatus.PENDING
    assert isinstance(refused, OrderInvalid) and "USD 40.00 used" in refused.errors["limit"]
    assert len(stored(p)) == 1
