"""Four-eyes approvals and daily spending limits (issue 13), with a controlled clock, on SQLite and PostgreSQL.

The requester is U123 (holding the finance role where it matters); U777 is a finance approver.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from gatebot.config import SpendLimit
from gatebot.events import Event
from gatebot.money import Money
from gatebot.orders import (
    APPROVAL_EXPIRED,
    APPROVAL_REJECTED,
    ApprovalPolicy,
    ApprovalRefused,
    GateDown,
    OrderDraft,
    OrderInvalid,
    OrderService,
)
from gatebot.store import repo
from gatebot.store.models import Order, OrderStatus

from .conftest import Pipeline

STEAM_20 = 101  # voucher USD 20
FINANCE = frozenset({"finance"})
APPROVER = "U777"


def draft(quantity: int = 1, *, requester: str = "U123", roles: frozenset[str] = FINANCE) -> OrderDraft:
    return OrderDraft(product=STEAM_20, quantity=quantity, requester=requester, requester_roles=roles)


def policy(p: Pipeline, **kw: object) -> None:
    p.service.approval_policy = dataclasses.replace(ApprovalPolicy(), **kw)  # type: ignore[arg-type]


def watch(p: Pipeline) -> list[str]:
    """The kinds of the ``approval.*`` events published from now on (for the surfaces that tell people)."""
    kinds: list[str] = []

    async def record(event: Event) -> None:
        kinds.append(event.kind)

    p.service.events.subscribe("approval.", record)
    return kinds


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


async def request(p: Pipeline, quantity: int = 3, **kw: object) -> Order:
    """An order over the USD 40 threshold, awaiting approval."""
    policy(p, approval_over={"USD": usd("40")})
    order = await p.service.place(draft(quantity, **kw))  # type: ignore[arg-type]
    assert order.status == OrderStatus.AWAITING_APPROVAL
    return order


def audit(p: Pipeline, action: str) -> list[tuple[str, str | None, bool, str | None]]:
    with p.db.session() as s:
        return [(e.actor, e.target, e.allowed, e.detail) for e in reversed(repo.recent_audit(s, action=action))]


# -- the request ---------------------------------------------------------------------------------------------
async def test_exactly_at_the_threshold_is_sent_just_over_it_waits(pipeline: Pipeline) -> None:
    p = pipeline
    policy(p, approval_over={"USD": usd("40")})
    at = await p.service.quote(draft(2))
    assert not at.needs_approval
    sent = await p.service.place(draft(2))
    assert sent.status == OrderStatus.PENDING and p.creates() == 1

    policy(p, approval_over={"USD": usd("39.99")})
    approvals = watch(p)
    over = await p.service.quote(draft(2))
    assert over.approval == "it costs USD 40.00, over the approval threshold of USD 39.99"
    waiting = await p.service.place(draft(2))
    assert waiting.status == OrderStatus.AWAITING_APPROVAL
    assert p.creates() == 1, "an order awaiting approval must not reach Gate"
    assert waiting.approval_expires_at == p.clock.now() + timedelta(hours=24)
    assert waiting.status_reason == "Needs approval: it costs USD 40.00, over the approval threshold of USD 39.99."
    assert waiting.requester_roles == ",finance,"
    assert p.events[-1].kind == "order.created" and p.events[-1].data == {"status": "awaiting_approval"}
    assert approvals == ["approval.requested"]
    assert [(h.to_status, h.actor) for h in await p.service.history(waiting.id or 0)] == [
        (OrderStatus.AWAITING_APPROVAL, "U123")]
    assert audit(p, "approval.request") == [
        ("U123", waiting.number, True, "USD 40.00: it costs USD 40.00, over the approval threshold of USD 39.99")]
    # Another currency has no threshold: sent at once.
    assert not (await p.service.quote(OrderDraft(product=458, amount="10", requester="U123",
                                                 account={"phone": "+447700900123"}))).needs_approval


async def test_no_policy_changes_nothing(pipeline: Pipeline) -> None:
    order = await pipeline.service.place(draft(10))
    assert order.status == OrderStatus.PENDING and order.approval_expires_at is None


# -- deciding ------------------------------------------------------------------------------------------------
async def test_self_approval_is_refused_even_for_a_finance_requester(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    approvals = watch(p)
    with pytest.raises(ApprovalRefused, match="You placed this order, so someone else has to approve"):
        await p.service.approve(order.id or 0, "U123", roles=FINANCE)
    with pytest.raises(ApprovalRefused, match=r"Only admin or finance may approve or reject orders\."):
        await p.service.approve(order.id or 0, "U555", roles={"ops"})
    assert p.creates() == 0
    assert [(a, allowed) for a, _, allowed, _ in audit(p, "approval.decide")] == [("U123", False), ("U555", False)]

    approved = await p.service.approve(order.id or 0, APPROVER, roles=FINANCE)
    assert approved.status == OrderStatus.PENDING and approved.decided_by == APPROVER
    assert approved.decided_at == p.clock.now() and approved.decision_reason is None
    assert [o["idempotency_key"] for o in p.sim.all_orders()] == [order.idempotency_key]
    assert [(h.to_status, h.actor) for h in await p.service.history(order.id or 0)] == [
        (OrderStatus.AWAITING_APPROVAL, "U123"), (OrderStatus.SUBMITTING, APPROVER), (OrderStatus.PENDING, APPROVER)]
    assert audit(p, "approval.approved") == [(APPROVER, order.number, True, None)]
    assert approvals == ["approval.approved"]
    assert [e.kind for e in p.events] == ["order.created", "order.submitting", "order.pending"]


async def test_cli_identities_approve_only_when_listed(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    with pytest.raises(ApprovalRefused, match="Only admin or finance"):
        await p.service.approve(order.id or 0, "cli:alice")
    policy(p, approval_over={"USD": usd("40")}, cli_approvers=frozenset({"cli:alice"}))
    assert (await p.service.approve(order.id or 0, "cli:alice")).status == OrderStatus.PENDING


async def test_concurrent_approvals_make_one_decision_and_one_gate_order(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    results = await asyncio.gather(
        p.service.approve(order.id or 0, APPROVER, roles=FINANCE),
        p.service.approve(order.id or 0, "U888", roles={"admin"}),
        p.service.approve(order.id or 0, APPROVER, roles=FINANCE),  # a double click
        return_exceptions=True)
    won = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, ApprovalRefused)]
    assert len(won) == 1 and len(refused) == 2, results
    assert all("was already approved by" in str(r) or "decided by someone else" in str(r) for r in refused)
    assert p.creates() == 1
    assert len(audit(p, "approval.approved")) == 1
    # A retry after the fact changes nothing either.
    with pytest.raises(ApprovalRefused, match=r"was already approved by U\d+; nothing changed"):
        await p.service.approve(order.id or 0, "U888", roles={"admin"})
    assert p.creates() == 1


async def test_two_services_racing_on_one_store_make_one_decision(pipeline: Pipeline) -> None:
    """Two processes (two services over the same store): the compare-and-set in SQL decides."""
    p = pipeline
    order = await request(p)
    other = OrderService(db=p.db, gate_client=p.service.gate, cipher=p.service.cipher, clock=p.clock,
                         approval_policy=p.service.approval_policy)
    results = await asyncio.gather(p.service.approve(order.id or 0, APPROVER, roles=FINANCE),
                                   other.approve(order.id or 0, "U888", roles=FINANCE), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["ApprovalRefused", "Order"]
    assert p.creates() == 1


async def test_approval_after_expiry_is_refused_and_the_sweep_ends_it(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    approvals = watch(p)
    p.clock.advance(timedelta(hours=24))
    with pytest.raises(ApprovalRefused, match="has expired"):
        await p.service.approve(order.id or 0, APPROVER, roles=FINANCE)
    assert await p.service.expire_approvals() == 1
    assert await p.service.expire_approvals() == 0
    ended = await p.service.find(order.external_ref)
    assert ended is not None and ended.status == OrderStatus.REJECTED and ended.error_code == APPROVAL_EXPIRED
    assert ended.decided_by == "system:approvals"
    assert p.creates() == 0 and p.events[-1].kind == "order.rejected" and approvals == ["approval.expired"]
    assert audit(p, "approval.expired") == [("system:approvals", order.number, True, None)]
    with pytest.raises(ApprovalRefused, match="has expired; nothing changed"):
        await p.service.approve(order.id or 0, APPROVER, roles=FINANCE)


async def test_a_request_just_before_expiry_is_not_swept(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    p.clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert await p.service.expire_approvals() == 0
    assert (await p.service.approve(order.id or 0, APPROVER, roles=FINANCE)).status == OrderStatus.PENDING


async def test_approval_with_too_little_balance_waits_for_funds_then_resumes_with_the_same_key(
        pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    p.sim.set_balance("USD", "5.00")
    waiting = await p.service.approve(order.id or 0, APPROVER, roles=FINANCE)
    assert waiting.status == OrderStatus.WAITING_FUNDS
    p.sim.add_deposit("USD", "100.00", status="posted")
    assert await p.service.resume_waiting("USD") == 1
    resumed = await p.service.find(order.idempotency_key)
    assert resumed is not None and resumed.status == OrderStatus.PENDING
    assert [o["idempotency_key"] for o in p.sim.all_orders()] == [order.idempotency_key]


async def test_approval_while_gate_is_down_leaves_the_request_open(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)

    async def down() -> bool:
        return False

    p.service._gate_available = down
    with pytest.raises(GateDown):
        await p.service.approve(order.id or 0, APPROVER, roles=FINANCE)
    still = await p.service.find(order.external_ref)
    assert still is not None and still.status == OrderStatus.AWAITING_APPROVAL and p.creates() == 0


async def test_rejection_ends_the_request_without_any_gate_call(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    approvals = watch(p)
    before = p.gate_requests()
    with pytest.raises(ApprovalRefused, match="Say why"):
        await p.service.reject(order.id or 0, APPROVER, "  ", roles=FINANCE)
    with pytest.raises(ApprovalRefused, match="You placed this order"):
        await p.service.reject(order.id or 0, "U123", "no", roles=FINANCE)
    rejected = await p.service.reject(order.id or 0, APPROVER, "over budget this month", roles=FINANCE)
    assert rejected.status == OrderStatus.REJECTED and rejected.error_code == APPROVAL_REJECTED
    assert rejected.decision_reason == "over budget this month"
    assert rejected.status_reason == "Rejected by U777: over budget this month. Nothing was sent to Gate."
    assert p.gate_requests() == before and p.creates() == 0
    assert p.events[-1].kind == "order.rejected" and approvals == ["approval.rejected"]
    assert audit(p, "approval.rejected") == [(APPROVER, order.number, True, "over budget this month")]
    with pytest.raises(ApprovalRefused, match="was already rejected by U777"):
        await p.service.approve(order.id or 0, "U888", roles=FINANCE)


# -- daily limits --------------------------------------------------------------------------------------------
async def test_daily_limit_at_the_boundary_and_after_24_hours(pipeline: Pipeline) -> None:
    p = pipeline
    policy(p, daily_limits=(SpendLimit(usd("60")),))
    await p.service.place(draft(2))  # 40
    p.clock.advance(timedelta(hours=1))
    await p.service.place(draft(1))  # 60: exactly at the limit is allowed
    with pytest.raises(OrderInvalid) as info:
        await p.service.quote(draft(1))
    assert info.value.errors == {"limit": "This order (USD 20.00) would go over your daily limit of USD 60.00: "
                                          "USD 60.00 used in the last 24 hours, USD 0.00 remains. Ask finance to "
                                          "raise it, or order less."}
    assert (await p.service.quote(draft(1, requester="U999"))).cost == usd("20")  # per person
    p.clock.advance(timedelta(hours=23))  # the first order (40) is now exactly 24 h old: out of the window
    with pytest.raises(OrderInvalid, match=r"USD 20\.00 used in the last 24 hours, USD 40\.00 remains"):
        await p.service.quote(draft(3))
    assert not (await p.service.quote(draft(2))).needs_approval


async def test_role_limit_is_shared_and_awaiting_orders_count_but_rejected_do_not(pipeline: Pipeline) -> None:
    p = pipeline
    ops = frozenset({"ops"})
    limits = (SpendLimit(usd("100"), role="ops"),)
    policy(p, daily_limits=limits, approval_over={"USD": usd("50")})
    await p.service.place(draft(2, requester="U1", roles=ops))  # 40
    waiting = await p.service.place(draft(3, requester="U2", roles=ops))  # 60, awaiting approval: counts
    assert waiting.status == OrderStatus.AWAITING_APPROVAL
    with pytest.raises(OrderInvalid, match=r"the ops team's daily limit of USD 100\.00: USD 100\.00 used"):
        await p.service.quote(draft(1, requester="U3", roles=ops))
    assert (await p.service.quote(draft(1, requester="U3", roles=FINANCE))).cost == usd("20")
    await p.service.reject(waiting.id or 0, APPROVER, "not now", roles=FINANCE)
    assert (await p.service.quote(draft(1, requester="U3", roles=ops))).cost == usd("20")


async def test_over_limit_goes_to_approval_when_the_policy_says_so(pipeline: Pipeline) -> None:
    p = pipeline
    policy(p, daily_limits=(SpendLimit(usd("30")),), over_limit="approval")
    order = await p.service.place(draft(2))
    assert order.status == OrderStatus.AWAITING_APPROVAL and p.creates() == 0
    assert order.status_reason == ("Needs approval: it goes over your daily limit of USD 30.00 "
                                   "(USD 0.00 used in the last 24 hours).")


# -- a restart between request and approval -------------------------------------------------------------------
async def test_a_restart_between_request_and_approval_loses_nothing(pipeline: Pipeline) -> None:
    p = pipeline
    order = await request(p)
    body = order.request_body(p.service.cipher)
    restarted = OrderService(db=p.db, gate_client=p.service.gate, cipher=p.service.cipher, clock=p.clock,
                             approval_policy=p.service.approval_policy)
    [still] = await restarted.open_approvals()
    assert (still.id, still.idempotency_key, still.external_ref) == (order.id, order.idempotency_key,
                                                                    order.external_ref)
    assert still.request_body(restarted.cipher) == body
    assert await restarted.recover(everything=True) == 0, "recovery must never send an order awaiting approval"
    assert p.creates() == 0
    approved = await restarted.approve(order.id or 0, APPROVER, roles=FINANCE)
    assert approved.status == OrderStatus.PENDING
    [sent] = p.sim.all_orders()
    assert sent["idempotency_key"] == order.idempotency_key and sent["external_ref"] == order.external_ref
