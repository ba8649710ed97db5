"""A batch's life: approval, pause/resume/cancel, funds running out, Gate down, 429s, progress, results."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from gatebot.bulk import BATCH_CANCELLED, BatchRefused, BulkInvalid
from gatebot.config import SpendLimit
from gatebot.money import Money
from gatebot.orders import APPROVAL_EXPIRED, APPROVAL_REJECTED, ApprovalPolicy, GateDown, OrderDraft
from gatebot.store import repo
from gatebot.store.models import Batch, BatchStatus, Order, OrderStatus

from .conftest import Bulk, csv_bytes, topup_rows, voucher_rows

FINANCE = ["finance"]


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def rows_of(bulk: Bulk, batch_id: int) -> list[Order]:
    with bulk.p.db.session() as s:
        return repo.batch_orders(s, batch_id)


async def confirmed(bulk: Bulk, n: int = 5, *, requester: str = "U123", start: int = 1) -> int:
    plan = await bulk.service.plan(csv_bytes(voucher_rows(n, start=start)), requester=requester, source_name="f.csv")
    await bulk.service.confirm(plan.batch_id, requester)
    return plan.batch_id


def policy(bulk: Bulk, **kw: object) -> None:
    bulk.p.service.approval_policy = dataclasses.replace(ApprovalPolicy(), **kw)  # type: ignore[arg-type]


# -- approval ------------------------------------------------------------------------------------------------
async def test_the_batch_total_needs_approval_and_a_second_person_gives_it(bulk: Bulk) -> None:
    policy(bulk, approval_over={"USD": usd("90")})  # each row costs 20: only the total is over
    plan = await bulk.service.plan(csv_bytes(voucher_rows(5)), requester="U123", source_name="f.csv")
    assert plan.approval == "the batch's USD total is USD 100.00, over the approval threshold of USD 90.00"
    batch = await bulk.service.confirm(plan.batch_id, "U123")
    assert batch.state is BatchStatus.AWAITING_APPROVAL
    assert await bulk.service.tick(budget=timedelta(seconds=5)) == 0
    with pytest.raises(BatchRefused, match="four-eyes"):
        await bulk.service.approve(plan.batch_id, "U123", roles=FINANCE)
    with pytest.raises(BatchRefused, match="Only admin or finance"):
        await bulk.service.approve(plan.batch_id, "U555", roles=["ops"])
    approved = await bulk.service.approve(plan.batch_id, "U777", roles=FINANCE)
    assert approved.state is BatchStatus.RUNNING and approved.decided_by == "U777"
    with pytest.raises(BatchRefused, match="already approved by U777"):
        await bulk.service.approve(plan.batch_id, "U778", roles=FINANCE)
    await bulk.service.run_batch(plan.batch_id)
    assert bulk.p.creates() == 5
    assert "batch.awaiting_approval" in bulk.kinds and "batch.running" in bulk.kinds


async def test_a_batch_approved_while_gate_is_down_stays_open_and_says_what_it_holds(bulk: Bulk) -> None:
    policy(bulk, approval_over={"USD": usd("10")})
    plan = await bulk.service.plan(csv_bytes(voucher_rows(3) + topup_rows(2, start=4)), requester="U123",
                                   source_name="f.csv")
    await bulk.service.confirm(plan.batch_id, "U123")
    assert [(p.product_id, p.rows) for p in await bulk.service.products(plan.batch_id)] == [(101, 3), (456, 2)]
    assert [b.id for b in await bulk.service.open_approvals()] == [plan.batch_id]
    assert "four-eyes" in (await bulk.service.decision_refusal(plan.batch_id, "U123", roles=FINANCE) or "")
    assert await bulk.service.decision_refusal(plan.batch_id, "U777", roles=FINANCE) is None

    async def down() -> bool:
        return False

    gate_available = bulk.p.service._gate_available
    bulk.p.service._gate_available = down
    with pytest.raises(GateDown):
        await bulk.service.approve(plan.batch_id, "U777", roles=FINANCE)
    with pytest.raises(BatchRefused, match="four-eyes"):  # a refusal still comes first
        await bulk.service.approve(plan.batch_id, "U123", roles=FINANCE)
    assert (await bulk.service.progress(plan.batch_id)).status is BatchStatus.AWAITING_APPROVAL
    bulk.p.service._gate_available = gate_available
    assert (await bulk.service.approve(plan.batch_id, "U777", roles=FINANCE)).state is BatchStatus.RUNNING
    assert await bulk.service.open_approvals() == [] and bulk.p.creates() == 0


async def test_rejection_and_expiry_end_every_row_without_a_gate_call(bulk: Bulk) -> None:
    policy(bulk, approval_over={"USD": usd("10")}, ttl=timedelta(hours=1))
    rejected = await confirmed(bulk, 3)
    batch = await bulk.service.reject(rejected, "U777", "  not   this month ", roles=FINANCE)
    assert batch.state is BatchStatus.REJECTED and batch.decision_reason == "not this month"
    assert {(o.status, o.error_code) for o in rows_of(bulk, rejected)} == {(OrderStatus.REJECTED, APPROVAL_REJECTED)}

    expiring = await confirmed(bulk, 2, start=10)
    bulk.p.clock.advance(timedelta(hours=1))
    await bulk.service.tick(budget=timedelta(seconds=1))
    assert (await bulk.service.progress(expiring)).status is BatchStatus.REJECTED
    assert {(o.status, o.error_code) for o in rows_of(bulk, expiring)} == {(OrderStatus.REJECTED, APPROVAL_EXPIRED)}
    assert bulk.p.creates() == 0


async def test_a_batch_over_a_daily_limit_is_refused_or_sent_for_approval(bulk: Bulk) -> None:
    policy(bulk, daily_limits=(SpendLimit(usd("50")),))
    with pytest.raises(BulkInvalid, match=r"This batch \(USD 100.00\) would go over your daily limit of USD 50.00"):
        await bulk.service.plan(csv_bytes(voucher_rows(5)), requester="U123", source_name="f.csv")
    policy(bulk, daily_limits=(SpendLimit(usd("50")),), over_limit="approval")
    plan = await bulk.service.plan(csv_bytes(voucher_rows(5)), requester="U123", source_name="f.csv")
    assert plan.approval is not None and "daily limit of USD 50.00" in plan.approval


@pytest.mark.parametrize("over_limit", ["refuse", "approval"])
async def test_a_confirmation_racing_a_single_order_keeps_the_daily_limit(bulk: Bulk, over_limit: str) -> None:
    """The plan and the order's quote both pass (USD 60 each, USD 100 a day); then both save at once. The check
    inside each save sees the other's spend: one of them is refused (or waits for approval), never both out."""
    policy(bulk, daily_limits=(SpendLimit(usd("100")),), over_limit=over_limit)
    plan = await bulk.service.plan(csv_bytes(voucher_rows(3)), requester="U123", source_name="f.csv")
    order_draft = OrderDraft(product=101, quantity=3, requester="U123")
    quote = await bulk.p.service.quote(order_draft)

    batch, order = await asyncio.gather(bulk.service.confirm(plan.batch_id, "U123"),
                                        bulk.p.service.save_intent(quote, order_draft), return_exceptions=True)

    with bulk.p.db.session() as s:
        spent = repo.spent_since(s, currency="USD", since=bulk.p.clock.now() - timedelta(days=1))
        batch_now = repo.get_batch(s, plan.batch_id)
    assert batch_now is not None
    going_out: list[Order | Batch] = [o for o in (batch, order)
                                      if isinstance(o, Order) and o.status == OrderStatus.SUBMITTING]
    going_out += [b for b in (batch, order) if isinstance(b, Batch) and b.state is BatchStatus.RUNNING]
    assert len(going_out) == 1
    if over_limit == "refuse":
        assert spent == Decimal("60")
        [lost] = [r for r in (batch, order) if isinstance(r, Exception)]
        assert "would go over your daily limit of USD 100.00: USD 60.00 used" in str(lost)
        assert (batch_now.state is BatchStatus.PLANNED) == isinstance(lost, BulkInvalid)
    else:
        assert spent == Decimal("120")  # both saved: the one over the limit awaits approval, and counts
        waiting = [r for r in (batch, order) if isinstance(r, Order | Batch) and "awaiting" in r.status]
        assert len(waiting) == 1


# -- confirmation ---------------------------------------------------------------------------------------------
async def test_two_confirmations_at_once_save_one_set_of_rows(bulk: Bulk) -> None:
    plan = await bulk.service.plan(csv_bytes(voucher_rows(20)), requester="U123", source_name="f.csv")
    first, second = await asyncio.gather(bulk.service.confirm(plan.batch_id, "U123"),
                                         bulk.service.confirm(plan.batch_id, "U123"))
    assert first.id == second.id
    assert len(rows_of(bulk, plan.batch_id)) == 20
    with pytest.raises(BatchRefused, match="Only the person who uploaded"):
        await bulk.service.confirm(plan.batch_id, "U999")


async def test_a_double_click_that_finds_the_rows_already_saved_gets_that_batch_not_an_error(bulk: Bulk) -> None:
    """The second click re-checks the file after the first committed its rows: their references are now in
    the store. That is the same batch, confirmed — not a file that went invalid."""
    plan = await bulk.service.plan(csv_bytes(voucher_rows(5)), requester="U123", source_name="f.csv")
    original = bulk.service._revalidate
    done = asyncio.Event()
    arrivals = 0

    async def revalidate(batch: Batch) -> Any:
        nonlocal arrivals
        arrivals += 1
        if arrivals == 2:
            await done.wait()  # the other click commits first
        return await original(batch)

    bulk.service._revalidate = revalidate  # type: ignore[method-assign]

    async def click() -> Batch:
        try:
            return await bulk.service.confirm(plan.batch_id, "U123")
        finally:
            done.set()

    first, second = await asyncio.gather(click(), click())
    assert arrivals == 2 and first.id == second.id == plan.batch_id
    assert second.state is BatchStatus.RUNNING and len(rows_of(bulk, plan.batch_id)) == 5


async def test_a_reference_taken_between_plan_and_confirmation_is_reported(bulk: Bulk) -> None:
    first = await bulk.service.plan(csv_bytes(voucher_rows(3)), requester="U123", source_name="a.csv")
    second = await bulk.service.plan(csv_bytes(voucher_rows(3)), requester="U123", source_name="b.csv")
    await bulk.service.confirm(first.batch_id, "U123")
    with pytest.raises(BulkInvalid, match="REF-00001 is already used by order"):
        await bulk.service.confirm(second.batch_id, "U123")
    assert (await bulk.service.progress(second.batch_id)).status is BatchStatus.PLANNED
    assert len(rows_of(bulk, second.batch_id)) == 0


async def test_an_unconfirmed_plan_is_dropped_with_its_file_after_a_day(bulk: Bulk) -> None:
    plan = await bulk.service.plan(csv_bytes(voucher_rows(1)), requester="U123", source_name="f.csv")
    bulk.p.clock.advance(timedelta(hours=24))
    await bulk.service.tick(budget=timedelta(seconds=1))
    batch = await bulk.service.get(plan.batch_id)
    assert batch is not None and batch.state is BatchStatus.CANCELLED and batch.source_enc is None
    with pytest.raises(BatchRefused, match="dropped before it was confirmed"):
        await bulk.service.confirm(plan.batch_id, "U123")


# -- pause, resume, cancel -------------------------------------------------------------------------------------
async def test_pause_resume_and_cancel_by_the_requester_or_an_admin(bulk: Bulk) -> None:
    batch_id = await confirmed(bulk, 10)
    await bulk.service.run_batch(batch_id, until=bulk.p.clock.now() + timedelta(seconds=0.5))
    sent = bulk.p.creates()
    assert 0 < sent < 10
    with pytest.raises(BatchRefused, match="Only the person who placed the batch, or an admin"):
        await bulk.service.pause(batch_id, "U555", roles=FINANCE)
    await bulk.service.pause(batch_id, "U123")
    await bulk.service.run_batch(batch_id)
    assert bulk.p.creates() == sent  # paused: nothing more
    await bulk.service.resume(batch_id, "UADMIN", roles=["admin"])
    await bulk.service.run_batch(batch_id, until=bulk.p.clock.now() + timedelta(seconds=0.3))
    more = bulk.p.creates()
    assert more > sent
    cancelled = await bulk.service.cancel(batch_id, "U123")
    assert cancelled.state is BatchStatus.CANCELLED and cancelled.results_expire_at is not None
    await bulk.service.run_batch(batch_id)
    assert bulk.p.creates() == more
    ended = [o for o in rows_of(bulk, batch_id) if o.status == OrderStatus.REJECTED]
    assert len(ended) == 10 - more and {o.error_code for o in ended} == {BATCH_CANCELLED}
    with pytest.raises(BatchRefused, match="is cancelled: it cannot be resumed now"):
        await bulk.service.resume(batch_id, "U123")


# -- placement under trouble -------------------------------------------------------------------------------------
async def test_insufficient_balance_pauses_the_batch_until_a_deposit_posts(bulk: Bulk) -> None:
    bulk.p.sim.set_balance("USD", "50.00")  # two rows of 20, then Gate says no
    batch_id = await confirmed(bulk, 5)
    progress = await bulk.service.run_batch(batch_id)
    assert progress.status is BatchStatus.WAITING_FUNDS and progress.placed == 2
    assert [o.status for o in rows_of(bulk, batch_id)][2:] == [OrderStatus.WAITING_FUNDS, OrderStatus.QUEUED,
                                                              OrderStatus.QUEUED]
    await bulk.service.tick(budget=timedelta(seconds=5))
    assert bulk.p.creates() == 3  # nothing more while waiting (the waiting row was tried once)
    bulk.p.sim.add_deposit("USD", "1000.00")
    assert await bulk.p.service.resume_waiting("USD") == 1  # the deposit watch's call: same key
    await bulk.service.tick(budget=timedelta(seconds=5))
    assert (await bulk.service.progress(batch_id)).placed == 5
    keys = [o.idempotency_key for o in rows_of(bulk, batch_id)]
    assert len(set(keys)) == 5 and int(bulk.p.sim.stats()["creates"]["created"]) == 5


async def test_while_gate_is_down_the_runner_waits_and_no_row_fails(bulk: Bulk) -> None:
    up = False

    async def available() -> bool:
        return up

    batch_id = await confirmed(bulk, 3)
    bulk.p.service._gate_available = available
    await bulk.service.run_batch(batch_id, until=bulk.p.clock.now() + timedelta(minutes=1))
    assert bulk.p.creates() == 0 and bulk.slept.count(5.0) >= 10
    assert {o.status for o in rows_of(bulk, batch_id)} == {OrderStatus.QUEUED}
    up = True
    assert (await bulk.service.run_batch(batch_id)).placed == 3


async def test_a_429_the_client_gave_up_on_is_sent_again_after_a_pause(bulk: Bulk) -> None:
    batch_id = await confirmed(bulk, 3)
    bulk.p.sim.faults.rate_limit_burst = 3  # more than the client's three attempts
    progress = await bulk.service.run_batch(batch_id)
    assert progress.placed == 3 and any(s >= 5.0 for s in bulk.slept)
    assert int(bulk.p.sim.stats()["creates"]["created"]) == 3


async def test_a_long_retry_after_is_waited_out_before_the_row_is_sent_again(bulk: Bulk) -> None:
    batch_id = await confirmed(bulk, 2)
    bulk.p.sim.faults.rate_limit_burst = 1
    bulk.p.sim.faults.retry_after = 120  # longer than the client sleeps through: it gives up at once
    progress = await bulk.service.run_batch(batch_id)
    assert progress.placed == 2 and int(bulk.p.sim.stats()["creates"]["created"]) == 2
    assert max(bulk.slept) >= 119  # Gate's Retry-After, not the runner's own 5 s pause


async def test_progress_events_are_throttled_and_say_where_the_batch_is(bulk: Bulk) -> None:
    bulk.service.rate = 50.0
    batch_id = await confirmed(bulk, 200)
    await bulk.service.run_batch(batch_id)  # 200 rows at 50/s: 4 s of clock time
    progress = [e for e in bulk.events if e.kind == "batch.progress"]
    assert 2 <= len(progress) <= 3
    last = progress[-1].data["progress"]
    assert last.placed > 100 and last.rows == 200 and last.eta is not None
    assert progress[-1].data["batch_id"] == batch_id and progress[-1].data["requester"] == "U123"


# -- results ------------------------------------------------------------------------------------------------------
async def test_results_are_for_the_requester_only_and_expire(bulk: Bulk) -> None:
    plan = await bulk.service.plan(csv_bytes(topup_rows(2)), requester="U123", source_name="f.csv")
    with pytest.raises(BatchRefused, match="never confirmed"):
        await bulk.service.results_csv(plan.batch_id, "U123")
    await bulk.service.confirm(plan.batch_id, "U123")
    await bulk.service.run_batch(plan.batch_id)
    bulk.p.clock.advance(120)
    await bulk.p.service.track()
    assert (await bulk.service.settle(plan.batch_id)).status is BatchStatus.FINISHED
    with pytest.raises(BatchRefused, match="Only the person who placed batch"):
        await bulk.service.results_csv(plan.batch_id, "U777")
    text = (await bulk.service.results_csv(plan.batch_id, "U123")).decode()
    assert "player_1" in text and "vendor_order_id=LC-" in text
    bulk.p.clock.advance(timedelta(days=7))
    await bulk.service.tick(budget=timedelta(seconds=1))
    with pytest.raises(BatchRefused, match="expired"):
        await bulk.service.results_csv(plan.batch_id, "U123")
    batch = await bulk.service.get(plan.batch_id)
    assert batch is not None and batch.source_enc is None  # the file (customer accounts) is gone


async def test_a_batch_and_its_rows_are_found_by_reference(bulk: Bulk) -> None:
    batch_id = await confirmed(bulk, 2)
    assert (found := await bulk.service.find(f"b{batch_id}")) is not None and found.id == batch_id
    assert await bulk.service.find("12") is None
    row = await bulk.p.service.find("REF-00002")
    assert row is not None and (row.batch_id, row.batch_row) == (batch_id, 3)


# -- the bulk job ------------------------------------------------------------------------------------------------
async def test_the_bulk_job_resends_stranded_rows_first_then_places_for_one_interval(bulk: Bulk) -> None:
    from gatebot.alerts import AlertPolicy
    from gatebot.jobs import JobContext, JobSpec, run_bulk, run_job
    from gatebot.poster import LogPoster

    p = bulk.p
    batch_id = await confirmed(bulk, 40)
    with p.db.session() as s:  # a process died between a row's claim and its request
        stranded = repo.batch_orders(s, batch_id)[0]
        repo.set_status(s, stranded, OrderStatus.SUBMITTING, actor="system:bulk", now=p.clock.now())
        s.commit()
    ctx = JobContext(db=p.db, clock=p.clock, orders=p.service, gate=p.service.gate, poster=LogPoster(),
                     policy=AlertPolicy(), thresholds={}, jobs=(JobSpec("bulk", run_bulk, timedelta(seconds=5)),),
                     bulk=bulk.service)
    outcome = await run_job(ctx, "bulk")
    assert outcome.ok and outcome.result == 25  # 5 s at 5 rows/s, the first at once
    assert p.creates() == 26 and ctx.bulk_resumed  # and the stranded row, with its own key
    assert (await bulk.service.progress(batch_id)).placed == 26
