"""The job runner, the job bodies not covered by the alert flows, the self-watch, the digest and the
scheduler (APScheduler wiring and the leader lease, in-process)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatebot import monitor
from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_API_KEY
from gatebot.jobs import (
    JobContext,
    JobSpec,
    default_jobs,
    describe_error,
    run_job,
)
from gatebot.logcontext import current
from gatebot.money import Money
from gatebot.orders import OrderDraft
from gatebot.runtime import build_runtime, until_stopped
from gatebot.sandbox.catalog import ALWAYS_FAILS_PRODUCT_ID
from gatebot.scheduler import DEFAULT_LEASE_TTL, Scheduler
from gatebot.store import repo
from tests.jobs.conftest import FINANCE, OPS, Harness

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def only(ctx: JobContext, *names: str, extra: tuple[JobSpec, ...] = ()) -> None:
    ctx.jobs = tuple(s for s in ctx.jobs if s.name in names) + extra


# -- the runner -----------------------------------------------------------------------------------------------


@sqlite_only
async def test_a_failing_job_is_logged_without_secrets_counted_and_retried(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h.sim.faults.error_rate = 1.0
    failed = await h.run("catalog")
    assert not failed.ok and failed.error is not None and failed.error.startswith("GateUnavailable")
    record = monitor.job_records(h.db)["catalog"]
    assert (record.runs, record.failures, record.consecutive_failures) == (1, 1, 1)
    assert record.last_error == failed.error and record.last_success is None

    h.sim.faults.error_rate = 0.0
    h.clock.advance(HOUR)
    assert (await h.run("catalog")).ok  # retried at the next run
    record = monitor.job_records(h.db)["catalog"]
    assert (record.runs, record.failures, record.consecutive_failures) == (2, 1, 0)
    assert record.last_success == h.clock.now()
    assert "job catalog failed: GateUnavailable" in caplog.text
    assert SANDBOX_API_KEY not in caplog.text and "Authorization" not in caplog.text


@sqlite_only
async def test_a_bug_in_a_job_is_caught_with_its_traceback(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(ctx: JobContext) -> None:
        raise KeyError("voucher_code")

    spec = JobSpec("broken", broken, MIN)
    only(h.ctx, extra=(spec,))
    outcome = await h.run("broken")
    assert outcome.error == "KeyError: 'voucher_code'"
    (record,) = [r for r in caplog.records if r.name == "gatebot.jobs" and r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert (await h.run("broken")).error is not None  # and it runs again next time
    assert monitor.job_records(h.db)["broken"].consecutive_failures == 2


def test_describe_error_keeps_database_parameters_out() -> None:
    from sqlalchemy.exc import IntegrityError

    exc = IntegrityError("INSERT INTO orders ...", {"customer_account_enc": "p1:secret"}, Exception("dup"))
    assert describe_error(exc) == "IntegrityError (Exception)"
    assert describe_error(ValueError("x" * 1000)).endswith("…")


@sqlite_only
async def test_a_job_never_overlaps_itself(h: Harness) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx: JobContext) -> str:
        started.set()
        await release.wait()
        return "done"

    only(h.ctx, extra=(JobSpec("slow", slow, MIN),))
    first = asyncio.create_task(run_job(h.ctx, "slow"))
    await started.wait()
    second = await run_job(h.ctx, "slow")
    assert second.skipped == "already running" and not second.ok
    release.set()
    assert (await first).result == "done"
    assert monitor.job_records(h.db)["slow"].runs == 1


@sqlite_only
async def test_every_log_line_of_a_job_run_names_the_job(h: Harness) -> None:
    seen: list[dict[str, str]] = []

    async def body(ctx: JobContext) -> None:
        seen.append(dict(current()))

    only(h.ctx, extra=(JobSpec("probe_job", body, MIN),))
    assert (await run_job(h.ctx, "probe_job")).ok
    assert seen == [{"job": "probe_job"}] and not current()


@sqlite_only
async def test_api_jobs_are_skipped_while_the_circuit_is_open(h: Harness) -> None:
    h.sim.faults.health_down = True
    for _ in range(3):
        await h.run("health")
    requests = sum(h.sim.stats()["requests"].values())
    for name in ("catalog", "track", "recover", "balance", "deposits"):
        assert (await h.run(name)).skipped == "Gate API down (circuit open)"
    assert sum(h.sim.stats()["requests"].values()) == requests  # nothing was sent to Gate
    assert monitor.job_records(h.db)["track"].last_skip == "Gate API down (circuit open)"
    assert (await h.run("health")).ok  # the health job itself always runs


# -- job bodies ----------------------------------------------------------------------------------------------------


@sqlite_only
async def test_tracking_completes_orders_and_recovery_redrives_every_intent_first(h: Harness) -> None:
    order = await h.buy(101)
    assert order.status == "pending"
    h.clock.advance(timedelta(seconds=91))
    outcome = await h.run("track")
    assert outcome.ok and outcome.result.changed == 1  # type: ignore[attr-defined]
    assert (await h.core.orders.find(str(order.id))).status == "completed"  # type: ignore[union-attr]

    draft = OrderDraft(product=101, requester="UALICE")
    intent = await h.core.orders.save_intent(await h.core.orders.quote(draft), draft)  # "crashed" before sending
    assert (await h.run("recover")).result == 1  # the first run ignores the retry time (everything=True)
    assert (await h.core.orders.find(str(intent.id))).status == "pending"  # type: ignore[union-attr]
    assert h.ctx.recovered_all
    assert (await h.run("recover")).result == 0


@pytest.mark.parametrize(("db_url", "harness_settings"), [("sqlite", {"gatebot_catalog_interval": 60})],
                         indirect=True)
async def test_a_job_that_has_not_succeeded_for_three_intervals_raises_its_own_alert(h: Harness) -> None:
    only(h.ctx, "catalog", "selfwatch")
    h.ctx.started_at = h.clock.now()
    for spec in h.ctx.jobs:
        monitor.register_job(h.db, spec.name, spec.interval, h.clock.now())
    h.sim.faults.error_rate = 1.0
    await h.simulate(4 * MIN, {"catalog": MIN, "selfwatch": MIN})
    assert h.posts(OPS) == []  # three intervals are not yet "more than three"
    await h.simulate(MIN, {"catalog": MIN, "selfwatch": MIN})
    (alert,) = h.posts(OPS)
    assert "Job catalog not succeeding" in alert.text

    (status,) = [s for s in monitor.job_status(h.db, h.clock.now()) if s.name == "catalog"]
    assert not status.ok and status.last_success is None
    assert status.last_error is not None and "GateUnavailable" in status.last_error
    assert status.to_json()["ok"] is False

    h.sim.faults.error_rate = 0.0
    await h.simulate(MIN, {"catalog": MIN, "selfwatch": MIN})
    assert "Job catalog running again" in h.ws.message(OPS, alert.ts).text
    (status,) = [s for s in monitor.job_status(h.db, h.clock.now()) if s.name == "catalog"]
    assert status.ok and status.last_success == h.clock.now() - MIN and status.consecutive_failures == 0


@sqlite_only
async def test_api_jobs_are_not_called_late_while_the_api_is_down_or_just_back(h: Harness) -> None:
    only(h.ctx, "health", "track", "selfwatch")
    h.ctx.started_at = h.clock.now()
    h.sim.faults.health_down = True
    await h.simulate(20 * MIN, {"health": MIN, "track": timedelta(seconds=30), "selfwatch": MIN})
    (down,) = h.posts(OPS)
    assert "Gate API down" in down.text  # and no "Job track not succeeding": held back
    h.sim.faults.health_down = False
    await h.simulate(20 * MIN, {"health": MIN, "track": timedelta(seconds=30), "selfwatch": MIN})
    assert len(h.posts(OPS)) == 1
    assert all(s.ok for s in monitor.job_status(h.db, h.clock.now()) if s.name == "track")


@sqlite_only
async def test_the_daily_digest_balances_the_books_and_calls_out_a_mismatch(h: Harness) -> None:
    await h.run("deposits")
    await h.run("balance")  # the first reading opens the first digest period
    assert (await h.run("digest")).result is None  # nothing due yet
    for _ in range(2):
        await h.buy(101)  # USD 20.00 each
    failed = await h.buy(ALWAYS_FAILS_PRODUCT_ID)  # the sandbox's always-failing voucher: charged, then released
    h.sim.add_deposit("USD", "300.00")
    h.clock.advance(2 * MIN)
    await h.run("track")
    h.clock.advance(timedelta(seconds=91))
    await h.run("track")
    assert (await h.core.orders.find(str(failed.id))).status == "failed"  # type: ignore[union-attr]
    await h.run("deposits")

    h.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    digest = (await h.run("digest")).result
    assert isinstance(digest, monitor.Digest)
    (usd,) = [line for line in digest.lines if line.currency == "USD"]
    assert (usd.opening, usd.deposits, usd.spend, usd.closing) == (
        Money.parse("5000", "USD"), Money.parse("300", "USD"), Money.parse("40", "USD"), Money.parse("5260", "USD"))
    assert usd.mismatch is None and digest.from_baseline
    report = h.posts(FINANCE)[-1]
    assert report.text == "Daily Gate digest (no mismatches)"
    h.clock.advance(HOUR)
    assert (await h.run("digest")).result is None  # once a day

    h.sim.set_balance("USD", "5000.00")  # money left without an order of ours
    h.clock.set(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    digest = (await h.run("digest")).result
    assert isinstance(digest, monitor.Digest)
    (usd,) = digest.mismatches
    assert usd.mismatch == Money.parse("-260", "USD") and usd.opening == Money.parse("5260", "USD")
    report = h.posts(FINANCE)[-1]
    assert report.text == "Daily Gate digest (1 mismatch(es): USD)"
    assert "Mismatch in USD" in str(report.blocks)


@sqlite_only
async def test_the_digest_is_retried_when_slack_fails_and_uses_the_last_readings_when_gate_is_down(
    h: Harness,
) -> None:
    await h.run("balance")
    h.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    h.ws.fail_next("chat.postMessage", "channel_not_found")
    failed = await h.run("digest")
    assert failed.error == "NotDelivered: the daily digest could not be posted; it is retried at the next run"
    h.sim.faults.health_down = True
    for _ in range(3):
        await h.run("health")
    h.clock.advance(HOUR)
    digest = (await h.run("digest")).result  # the next hour: sent, with the last readings
    assert isinstance(digest, monitor.Digest)
    assert digest.closing_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # read by the failed attempt
    assert digest.end == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert "closing balances are the last readings" in str(h.posts(FINANCE)[-1].blocks)


@sqlite_only
async def test_the_digest_catches_up_once_after_downtime(h: Harness) -> None:
    await h.run("balance")
    h.clock.set(datetime(2026, 11, 28, 13, 37, tzinfo=UTC))  # down for four days
    assert isinstance((await h.run("digest")).result, monitor.Digest)
    assert (await h.run("digest")).result is None
    assert len(h.posts(FINANCE)) == 1


# -- the job table ---------------------------------------------------------------------------------------------


@sqlite_only
def test_the_job_table_follows_the_settings(db_url: str) -> None:
    from tests.jobs.conftest import make_settings

    table = {s.name: s for s in default_jobs(make_settings(db_url, gatebot_track_interval=7,
                                                           gatebot_balance_interval=120))}
    assert list(table) == ["health", "catalog", "recover", "track", "approvals", "bulk", "balance", "deposits",
                           "digest", "selfwatch", "alerts"]
    assert table["approvals"].interval == timedelta(minutes=1)  # expiring approval requests needs no Gate
    assert table["track"].interval == timedelta(seconds=7) and table["balance"].interval == timedelta(minutes=2)
    assert table["bulk"].interval == timedelta(seconds=5)  # the runner's slice: it paces rows within it
    assert {n for n, s in table.items() if s.needs_api} == {"catalog", "recover", "track", "bulk", "balance",
                                                            "deposits"}
    assert table["digest"].at_minute == 0
    assert not table["selfwatch"].watched and not table["alerts"].watched
    with pytest.raises(ValueError, match="positive"):
        JobSpec("x", table["track"].run, timedelta(0))


# -- the scheduler and its lease ----------------------------------------------------------------------------------


def leading(scheduler: Scheduler) -> bool:
    """``is_leader`` through a call, so the type checker does not pin it after an assert."""
    return scheduler.is_leader


def instance(ctx: JobContext, owner: str, events: list[tuple[str, bool]], **options: Any) -> Scheduler:
    copy = dataclasses.replace(ctx, locks={})
    return Scheduler(copy, owner=owner, on_leadership=lambda leader, _why: events.append((owner, leader)),
                     **options)


async def test_one_leader_and_a_takeover_within_one_lease_period(h: Harness) -> None:
    events: list[tuple[str, bool]] = []
    a = instance(h.ctx, "host-a:1:aaaa", events, lease_ttl=30)
    b = instance(h.ctx, "host-b:2:bbbb", events, lease_ttl=30)
    assert await a.lease_step() == pytest.approx(10.0)
    wait = await b.lease_step()
    assert leading(a) and not leading(b) and 0 < wait <= 10.0
    status = monitor.scheduler_status(h.db, h.clock.now())
    assert status["holder"] == "host-a:1:aaaa" and status["active"]

    h.clock.advance(timedelta(seconds=10))
    await a.lease_step()  # renewed
    await b.lease_step()
    assert leading(a) and not leading(b)
    # a dies (no more renewals); b keeps trying
    h.clock.advance(timedelta(seconds=25))
    assert await b.lease_step() == pytest.approx(5.05)  # retries right when a's lease runs out
    assert not leading(b)
    h.clock.advance(timedelta(seconds=5.05))
    await b.lease_step()
    assert leading(b) and not leading(a)  # a would not run a job: its lease ran out
    await a.lease_step()  # a wakes up: steps down
    assert events == [("host-a:1:aaaa", True), ("host-b:2:bbbb", True), ("host-a:1:aaaa", False)]
    assert a.status()["leader"] is False and b.status()["leader"] is True


@sqlite_only
async def test_the_scheduler_runs_jobs_only_as_leader_and_hands_over_on_shutdown(h: Harness) -> None:
    ran: dict[str, int] = {}
    beat = asyncio.Event()

    def counting(owner: str) -> JobSpec:
        async def body(ctx: JobContext) -> None:
            ran[owner] = ran.get(owner, 0) + 1
            beat.set()
        return JobSpec("beat", body, timedelta(seconds=0.05))

    events: list[tuple[str, bool]] = []
    ctx_a = dataclasses.replace(h.ctx, jobs=(counting("a"),), locks={})
    ctx_b = dataclasses.replace(h.ctx, jobs=(counting("b"),), locks={})
    a = instance(ctx_a, "a", events, lease_ttl=DEFAULT_LEASE_TTL)
    b = instance(ctx_b, "b", events, lease_ttl=DEFAULT_LEASE_TTL)
    await a.start()
    await b.start()
    try:
        assert leading(a) and not leading(b)
        await asyncio.wait_for(beat.wait(), timeout=5)
        job = a._aps.get_job("beat") if a._aps else None
        assert job is not None and (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 1)
        status = a.status()
        assert status["leader"] and status["jobs"][0]["name"] == "beat" and status["jobs"][0]["next_run"]
        assert b.status()["jobs"][0]["next_run"] is None
        await a.shutdown()  # releases the lease at once
        assert monitor.scheduler_status(h.db, h.clock.now())["holder"] is None
        count_a = ran.get("a", 0)
        await b.lease_step()
        assert leading(b)
        beat.clear()
        await asyncio.wait_for(beat.wait(), timeout=5)
        assert ran.get("b", 0) >= 1 and ran.get("a", 0) == count_a  # a stopped; only b runs now
    finally:
        await a.shutdown()
        await b.shutdown()
    assert ("a", True) in events and ("b", True) in events
    assert monitor.job_records(h.db)["beat"].runs >= 2


@sqlite_only
async def test_run_clock_runs_until_stopped_and_releases_the_lease(h: Harness) -> None:
    beat = asyncio.Event()

    async def body(ctx: JobContext) -> None:
        beat.set()

    stop = asyncio.Event()
    rt = build_runtime(h.core, jobs=True, job_specs=[JobSpec("beat", body, MIN)], poster=h.poster, lease_ttl=5,
                       notifier=False)
    task = asyncio.create_task(rt.run(until_stopped, stop=stop))
    await asyncio.wait_for(beat.wait(), timeout=5)  # runs once at once on becoming leader
    assert monitor.scheduler_status(h.db, h.clock.now())["holder"] is not None
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert monitor.scheduler_status(h.db, h.clock.now())["holder"] is None


@sqlite_only
async def test_a_leader_that_cannot_renew_stops_running_jobs(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    events: list[tuple[str, bool]] = []
    a = instance(h.ctx, "a", events, lease_ttl=30)
    await a.lease_step()
    assert leading(a)

    def broken(*_args: Any, **_kw: Any) -> bool:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(repo, "try_acquire_lease", broken)
    h.clock.advance(timedelta(seconds=10))
    await a.lease_step()
    assert leading(a)  # a transient error: the lease is still ours for 20 s
    h.clock.advance(timedelta(seconds=21))
    await a.lease_step()
    assert not leading(a) and events[-1] == ("a", False)


def test_a_clock_for_the_lease_must_be_positive(tmp_path: Any) -> None:
    ctx: Any = dataclasses.make_dataclass("Ctx", [("clock", ManualClock)])(ManualClock())
    with pytest.raises(ValueError, match="lease_ttl"):
        Scheduler(ctx, lease_ttl=0)
