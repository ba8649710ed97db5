"""Scheduled jobs: what runs, how often, and on exactly one instance.

What lives here
    * The job bodies — plain ``async def run_<job>(ctx)`` functions over a :class:`JobContext`, callable
      directly (tests drive them with a :class:`~gatebot.clock.ManualClock`; nothing in them sleeps or
      reads the wall clock): catalog refresh, order tracking, order recovery, bulk placement, balance check,
      health check, deposit watch, daily digest, self-watch and the alert tick. Each is a line or two: the
      work is in the core (:class:`~gatebot.orders.OrderService`, :mod:`gatebot.finance`,
      :mod:`gatebot.health`, :mod:`gatebot.alerts.stored`); the job hands what people should see to a
      :class:`~gatebot.poster.Poster`.
    * :func:`run_job` — the one wrapper every run goes through: never overlaps itself, skips jobs that
      need the Gate API while its circuit is open, survives any exception (logged without secrets,
      counted in the job's record, retried at the next run) and records the outcome.
    * :class:`Scheduler` — APScheduler 3 (``AsyncIOScheduler``) wiring plus a leader lease in the
      store: with several instances only the lease holder runs jobs; the others retry every ``ttl/3``
      (and right when the holder's lease expires), so a dead leader is replaced within one lease
      period. Each job has ``max_instances=1``, ``coalesce=True`` and a misfire grace of one interval:
      after downtime a job catches up once, not once per missed run.
    ``gatebot clock`` is :meth:`gatebot.runtime.Runtime.run` with only the scheduler (the runtime owns
      the SIGTERM/SIGINT stop sequence).

Intervals come from ``GATEBOT_<JOB>_INTERVAL`` (seconds). The digest job runs hourly on the hour and
sends when a digest is due (daily at ``GATEBOT_DIGEST_HOUR`` UTC), so it also catches up after downtime
or a failed post.

Must not import Slack (slack_bolt/slack_sdk): the Slack poster is passed in as a
:class:`~gatebot.poster.Poster`. The only module besides ``runtime``/``cli`` that imports APScheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from gatebot import gate
from gatebot.alerts import AlertPolicy, Notification
from gatebot.alerts import stored as alert_store
from gatebot.bulk import BulkService
from gatebot.clock import Clock
from gatebot.config import Settings, Thresholds
from gatebot.finance.balance_check import BalanceUnavailable, check_balances
from gatebot.finance.deposits import DepositNotice, watch_deposits
from gatebot.finance.digest import Digest, NotDelivered, send_daily_digest
from gatebot.health.calls import CallRecorder
from gatebot.health.circuit import circuit_open_async
from gatebot.health.job_runs import SCHEDULER_LEASE, record_job_run, register_job
from gatebot.health.probe import check_gate_health
from gatebot.health.selfwatch import watch_jobs
from gatebot.logcontext import log_context
from gatebot.orders import GateDown, OrderService, TrackResult
from gatebot.poster import LogPoster, Poster
from gatebot.store import repo
from gatebot.store.db import Database

__all__ = [
    "ALERT_TICK_INTERVAL",
    "DEFAULT_LEASE_TTL",
    "SELF_WATCH_INTERVAL",
    "JobContext",
    "JobOutcome",
    "JobSpec",
    "Scheduler",
    "build_context",
    "default_jobs",
    "describe_error",
    "run_alert_tick",
    "run_balance_check",
    "run_bulk",
    "run_catalog_refresh",
    "run_daily_digest",
    "run_deposit_watch",
    "run_health_check",
    "run_job",
    "run_recovery",
    "run_self_watch",
    "run_tracking",
]

log = logging.getLogger(__name__)

ALERT_TICK_INTERVAL = timedelta(minutes=1)
SELF_WATCH_INTERVAL = timedelta(minutes=1)
#: Default scheduler lease: renewed every 10 s, a dead leader is replaced within 30 s.
DEFAULT_LEASE_TTL = 30.0
_MAX_ERROR = 300


# -- what a job is and what it gets --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job. ``needs_api``: skipped while the Gate circuit is open (and its self-watch alert
    is held back). ``at_minute``: run hourly at that minute instead of every ``interval`` (``interval`` is
    then the nominal hour). ``watched``: covered by the self-watch."""

    name: str
    run: Callable[..., Awaitable[object]]
    interval: timedelta
    needs_api: bool = False
    at_minute: int | None = None
    watched: bool = True

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError(f"job {self.name}: the interval must be positive")
        if self.at_minute is not None and not 0 <= self.at_minute <= 59:
            raise ValueError(f"job {self.name}: at_minute must be 0-59")


@dataclass
class JobContext:
    """Everything the job bodies use. ``started_at`` is when this instance became the leader (a job is
    not late before it had a chance to run); the scheduler sets it."""

    db: Database
    clock: Clock
    orders: OrderService
    gate: gate.GateClient
    poster: Poster
    policy: AlertPolicy
    thresholds: Mapping[str, Thresholds]
    jobs: tuple[JobSpec, ...] = ()
    calls: CallRecorder | None = None
    digest_hour: int = 8
    started_at: datetime | None = None
    #: The first recovery run re-drives every open intent (a previous process may have died mid-request).
    recovered_all: bool = False
    #: Bulk batches (``None``: this process places none). The first bulk run re-sends rows left in flight.
    bulk: BulkService | None = None
    bulk_resumed: bool = False
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def spec(self, name: str) -> JobSpec:
        for spec in self.jobs:
            if spec.name == name:
                return spec
        raise KeyError(f"no job named {name!r}")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    name: str
    ok: bool
    started: datetime
    finished: datetime
    error: str | None = None
    skipped: str | None = None
    result: object = None


# -- the wrapper every run goes through ---------------------------------------------------------------------------


def describe_error(exc: BaseException) -> str:
    """One line about a failure, safe to log and to show on ``/healthz``.

    Gate errors carry messages written to be safe (no key, no body). Database errors are reduced to
    their class names: their text can quote SQL parameters (encrypted columns, references). Anything
    else is a bug: its class and the first line of its message.
    """
    if isinstance(exc, gate.GateError):
        text = f"{type(exc).__name__}: {exc.message}"
    elif isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        text = type(exc).__name__ + (f" ({type(orig).__name__})" if orig is not None else "")
    else:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


async def run_job(ctx: JobContext, job: str | JobSpec, **kwargs: Any) -> JobOutcome:
    """Run one job once (see :func:`_run_job`); every log line of the run names the job (``job`` in JSON logs)."""
    with log_context(job=job if isinstance(job, str) else job.name):
        return await _run_job(ctx, job, **kwargs)


async def _run_job(ctx: JobContext, job: str | JobSpec, **kwargs: Any) -> JobOutcome:
    """Run one job once: no overlap with itself, skipped while the API it needs is down, every
    exception caught (logged without secrets, counted in its record), outcome recorded."""
    spec = ctx.spec(job) if isinstance(job, str) else job
    lock = ctx.locks.setdefault(spec.name, asyncio.Lock())
    started = ctx.clock.now()
    if lock.locked():
        log.info("job %s is still running; this run is skipped", spec.name)
        return JobOutcome(spec.name, ok=False, started=started, finished=started, skipped="already running")
    async with lock:
        if spec.needs_api and await _circuit_open(ctx):
            reason = "Gate API down (circuit open)"
            await _record(ctx, spec, started, started, skipped=reason)
            return JobOutcome(spec.name, ok=False, started=started, finished=started, skipped=reason)
        try:
            result = await spec.run(ctx, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = describe_error(exc)
            finished = ctx.clock.now()
            if isinstance(exc, gate.GateError | SQLAlchemyError | GateDown | BalanceUnavailable | NotDelivered):
                log.warning("job %s failed: %s", spec.name, error)
            else:  # a bug: keep the traceback (source lines only, no local values)
                log.error("job %s failed: %s", spec.name, error, exc_info=(type(exc), exc, exc.__traceback__))
            await _record(ctx, spec, started, finished, error=error)
            return JobOutcome(spec.name, ok=False, started=started, finished=finished, error=error)
        finished = ctx.clock.now()
        await _record(ctx, spec, started, finished)
        return JobOutcome(spec.name, ok=True, started=started, finished=finished, result=result)


async def _circuit_open(ctx: JobContext) -> bool:
    try:
        return await circuit_open_async(ctx.db)
    except SQLAlchemyError as exc:
        log.warning("could not read the Gate circuit (%s); running the job anyway", type(exc).__name__)
        return False


async def _record(ctx: JobContext, spec: JobSpec, started: datetime, finished: datetime, *,
                  error: str | None = None, skipped: str | None = None) -> None:
    try:
        await ctx.db.run(lambda s: record_job_run(s, spec.name, interval=spec.interval, started=started,
                                                  finished=finished, error=error, skipped=skipped))
    except SQLAlchemyError as exc:
        log.warning("could not record the run of job %s (%s)", spec.name, type(exc).__name__)


# -- job bodies ---------------------------------------------------------------------------------------------------


async def run_catalog_refresh(ctx: JobContext) -> int:
    """Reload Gate's catalog into the store (products added, changed, gone inactive)."""
    return await ctx.orders.refresh_catalog()


async def run_approval_expiry(ctx: JobContext) -> int:
    """End approval requests nobody decided in time (``rejected``, nothing sent); the pipeline publishes
    ``order.rejected`` and ``approval.expired``."""
    return await ctx.orders.expire_approvals()


async def run_tracking(ctx: JobContext) -> TrackResult:
    """Bring pending orders up to date; the pipeline publishes ``order.<status>`` events, which the
    Slack notifier turns into message edits and the code DM."""
    return await ctx.orders.track()


async def run_recovery(ctx: JobContext, *, everything: bool | None = None) -> int:
    """Re-drive intents left ``submitting``/``unknown`` (same key, same body). The first run of a leader
    re-drives all of them (``everything``): the previous process may have died mid-request."""
    all_of_them = not ctx.recovered_all if everything is None else everything
    count = await ctx.orders.recover(everything=all_of_them)
    if all_of_them:
        ctx.recovered_all = True
    return count


async def run_bulk(ctx: JobContext) -> int:
    """Place bulk batches' rows at ``GATEBOT_BULK_RATE`` for one interval (:mod:`gatebot.bulk`: the runner,
    approval expiry, resuming after a deposit, settling). On the leader only, so two instances never pace
    the same batch; a leader's first run re-sends (same keys) the rows a dead process left in flight."""
    if ctx.bulk is None:
        return 0
    if not ctx.bulk_resumed:
        await ctx.bulk.resume_batches()
        ctx.bulk_resumed = True
    return await ctx.bulk.tick(budget=ctx.spec("bulk").interval)


async def run_balance_check(ctx: JobContext) -> list[Notification]:
    """Read the balances, feed each configured currency's low-balance alert (:mod:`gatebot.finance.balance_check`)."""
    notes = await check_balances(ctx.db, ctx.orders, ctx.clock, thresholds=ctx.thresholds, policy=ctx.policy)
    await ctx.poster.deliver(notes)
    return notes


async def run_health_check(ctx: JobContext) -> list[Notification]:
    """Real calls since the last run and, when due, a ``/health`` probe (:mod:`gatebot.health.probe`)."""
    notes = await check_gate_health(ctx.db, ctx.gate, ctx.calls, ctx.clock.now(), ctx.policy)
    await ctx.poster.deliver(notes)
    return notes


async def run_deposit_watch(ctx: JobContext) -> list[DepositNotice]:
    """Record Gate's deposits, announce new postings, resume waiting orders (:mod:`gatebot.finance.deposits`)."""
    return await watch_deposits(ctx.db, ctx.gate, ctx.orders, ctx.poster, ctx.clock)


async def run_daily_digest(ctx: JobContext) -> Digest | None:
    """Send the finance digest when one is due (daily at ``digest_hour`` UTC; once after downtime;
    :mod:`gatebot.finance.digest`)."""
    return await send_daily_digest(ctx.db, ctx.orders, ctx.poster.send_digest, now=ctx.clock.now(),
                                   hour=ctx.digest_hour, gate_down=await _circuit_open(ctx))


async def run_self_watch(ctx: JobContext) -> list[Notification]:
    """A job that has not succeeded for three intervals raises its own alert (:mod:`gatebot.health.selfwatch`)."""
    notes = await watch_jobs(ctx.db, ctx.jobs, started_at=ctx.started_at, now=ctx.clock.now(), policy=ctx.policy)
    await ctx.poster.deliver(notes)
    return notes


async def run_alert_tick(ctx: JobContext) -> list[Notification]:
    """Reminders, snooze endings, reposts of alerts whose message never went out, flapping settling."""
    now = ctx.clock.now()
    notes = await ctx.db.run(lambda s: alert_store.tick(s, now, ctx.policy))
    await ctx.poster.deliver(notes)
    return notes


# -- the job table ------------------------------------------------------------------------------------------------


def default_jobs(settings: Settings) -> tuple[JobSpec, ...]:
    """Every job with its configured interval, in the order they first run when a leader starts."""

    def every(seconds: int) -> timedelta:
        return timedelta(seconds=seconds)

    return (
        JobSpec("health", run_health_check, every(settings.gatebot_health_interval)),
        JobSpec("catalog", run_catalog_refresh, every(settings.gatebot_catalog_interval), needs_api=True),
        JobSpec("recover", run_recovery, every(settings.gatebot_recover_interval), needs_api=True),
        JobSpec("track", run_tracking, every(settings.gatebot_track_interval), needs_api=True),
        JobSpec("approvals", run_approval_expiry, every(settings.gatebot_approval_interval)),
        JobSpec("bulk", run_bulk, every(settings.gatebot_bulk_interval), needs_api=True),
        JobSpec("balance", run_balance_check, every(settings.gatebot_balance_interval), needs_api=True),
        JobSpec("deposits", run_deposit_watch, every(settings.gatebot_deposit_interval), needs_api=True),
        JobSpec("digest", run_daily_digest, timedelta(hours=1), at_minute=0),
        JobSpec("selfwatch", run_self_watch, SELF_WATCH_INTERVAL, watched=False),
        JobSpec("alerts", run_alert_tick, ALERT_TICK_INTERVAL, watched=False),
    )


def build_context(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    orders: OrderService,
    gate: gate.GateClient,
    calls: CallRecorder | None = None,
    poster: Poster | None = None,
    jobs: Sequence[JobSpec] | None = None,
    bulk: BulkService | None = None,
) -> JobContext:
    """The job context of one process (``gatebot.runtime.job_context`` passes the core's services).
    ``calls``: the :class:`~gatebot.health.calls.CallRecorder` the Gate client reports its attempts to."""
    return JobContext(
        db=db, clock=clock, orders=orders, gate=gate, poster=poster or LogPoster(),
        policy=AlertPolicy.from_settings(settings), thresholds=dict(settings.gatebot_low_balance),
        jobs=tuple(jobs if jobs is not None else default_jobs(settings)), calls=calls,
        digest_hour=settings.gatebot_digest_hour, bulk=bulk,
    )


# -- the scheduler and its lease ------------------------------------------------------------------------------------


def default_owner() -> str:
    """``host:pid:random``: unique per process, readable in ``/healthz``."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


LeadershipHook = Callable[[bool, str], None]


class Scheduler:
    """The jobs of :class:`JobContext` on an APScheduler ``AsyncIOScheduler``, run only while this
    instance holds the store's ``scheduler`` lease.

    Lease: acquired or renewed every ``lease_ttl / 3`` seconds; a follower retries at that pace and also
    right after the holder's lease expires, so it takes over within one lease period of the leader's
    death. A leader that cannot renew before its lease runs out stops running jobs. On becoming leader
    every job runs once at once (staggered), the first recovery re-driving every open intent. On
    :meth:`shutdown` no new runs start, running ones get ``grace`` seconds to finish, then the lease is
    released so a successor need not wait for it to expire.

    ``on_leadership(is_leader, reason)`` is called on every change (logs, tests).
    """

    def __init__(
        self,
        ctx: JobContext,
        *,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        owner: str | None = None,
        lease_name: str = SCHEDULER_LEASE,
        on_leadership: LeadershipHook | None = None,
        grace: float = 10.0,
    ) -> None:
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be positive")
        self.ctx = ctx
        self.lease_ttl = float(lease_ttl)
        self.owner = owner or default_owner()
        self.lease_name = lease_name
        self.grace = grace
        self._on_leadership = on_leadership
        self._aps: AsyncIOScheduler | None = None
        self._leader = False
        self._leader_since: datetime | None = None
        self._lease_until: datetime | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._running: dict[asyncio.Task[Any], str] = {}
        self._last: dict[str, JobOutcome] = {}

    # -- state ---------------------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """Leader, and the lease has not run out since the last renewal."""
        return self._leader and self._lease_until is not None and self.ctx.clock.now() < self._lease_until

    @property
    def renew_every(self) -> float:
        return self.lease_ttl / 3

    def status(self) -> dict[str, Any]:
        """For ``/healthz`` and ``/gate health``: leadership and each job's schedule and last outcome."""
        jobs: list[dict[str, Any]] = []
        running = set(self._running.values())
        for spec in self.ctx.jobs:
            next_run = None
            if self._aps is not None and self.is_leader:
                job = self._aps.get_job(spec.name)
                when = getattr(job, "next_run_time", None) if job is not None else None
                next_run = when.astimezone(UTC).isoformat() if isinstance(when, datetime) else None
            last = self._last.get(spec.name)
            jobs.append({
                "name": spec.name,
                "interval_s": int(spec.interval.total_seconds()),
                "needs_api": spec.needs_api,
                "running": spec.name in running,
                "next_run": next_run,
                "last_run": last.started.isoformat() if last else None,
                "last_ok": last.ok if last else None,
                "last_error": last.error if last else None,
                "last_skipped": last.skipped if last else None,
            })
        return {
            "owner": self.owner,
            "leader": self.is_leader,
            "leader_since": self._leader_since.isoformat() if self._leader_since and self.is_leader else None,
            "lease_ttl_s": self.lease_ttl,
            "running": self._aps is not None and not (self._stopping and self._stopping.is_set()),
            "jobs": jobs,
        }

    # -- life cycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Set up the (paused) job schedule, try the lease once, then keep it in the background."""
        if self._aps is not None:
            raise RuntimeError("the scheduler is already started")
        executor_log = logging.getLogger("apscheduler.executors.default")
        if executor_log.level == logging.NOTSET:  # "Running job ..." twice a minute is noise
            executor_log.setLevel(logging.WARNING)
        self._stopping = asyncio.Event()
        aps = AsyncIOScheduler(timezone=UTC)
        for spec in self.ctx.jobs:
            aps.add_job(self._fire, trigger=_trigger(spec), args=[spec.name], id=spec.name, name=spec.name,
                        max_instances=1, coalesce=True, misfire_grace_time=_grace(spec), replace_existing=True)
        aps.start(paused=True)
        self._aps = aps
        await self._lease_once()
        self._lease_task = asyncio.create_task(self._lease_loop(), name=f"scheduler-lease:{self.owner}")
        log.info("scheduler %s started with %d jobs (lease %s, ttl %.0f s)", self.owner, len(self.ctx.jobs),
                 self.lease_name, self.lease_ttl)

    async def shutdown(self) -> None:
        """Stop: no new runs, let running jobs finish (``grace`` seconds), release the lease."""
        if self._aps is None or self._stopping is None or self._stopping.is_set():
            return
        self._stopping.set()
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        if self._aps.running:
            self._aps.pause()
        running = list(self._running)
        if running:
            _done, pending = await asyncio.wait(running, timeout=self.grace)
            for task in pending:
                log.warning("job %s did not finish within %.0f s of shutdown; cancelling it",
                            self._running.get(task, "?"), self.grace)
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._aps.running:
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # the asyncio scheduler shuts down on its next loop turn
        if self._leader:
            try:
                await self.ctx.db.run(lambda s: repo.release_lease(s, self.lease_name, self.owner))
            except SQLAlchemyError as exc:
                log.warning("could not release the scheduler lease (%s); it expires by itself",
                            type(exc).__name__)
            self._set_leader(False, "shut down")
        log.info("scheduler %s stopped", self.owner)

    async def run_now(self, name: str, **kwargs: Any) -> JobOutcome:
        """Run one job through :func:`run_job` now (tests, ``gatebot`` commands), leader or not."""
        outcome = await run_job(self.ctx, name, **kwargs)
        self._last[name] = outcome
        return outcome

    # -- the lease ---------------------------------------------------------------------------------------------
    async def lease_step(self) -> float:
        """Acquire or renew the lease once; returns how many seconds to wait before the next step."""
        now = self.ctx.clock.now()
        holder_expires: datetime | None = None
        holder_owner: str | None = None
        try:
            won = await self.ctx.db.run(
                lambda s: repo.try_acquire_lease(s, self.lease_name, self.owner, now, self.lease_ttl))
            if not won:
                holder = await self.ctx.db.run(lambda s: repo.lease_holder(s, self.lease_name, now=now))
                if holder is not None:
                    holder_expires, holder_owner = holder.expires_at, holder.owner
        except SQLAlchemyError as exc:
            log.warning("scheduler lease: database error (%s)", type(exc).__name__)
            if self._leader and not self.is_leader:
                self._step_down("the lease could not be renewed before it ran out")
            return self.renew_every
        if won:
            self._lease_until = now + timedelta(seconds=self.lease_ttl)
            if not self._leader:
                await self._register_jobs(now)
                self._become_leader(now)
            return self.renew_every
        if self._leader:
            self._step_down(f"the lease is held by {holder_owner or 'another instance'}")
        if holder_expires is None:  # freed between the two statements: try again right away
            return min(self.renew_every, 0.1)
        until_expiry = (holder_expires - now).total_seconds() + 0.05
        return max(0.05, min(self.renew_every, until_expiry))

    async def _lease_once(self) -> float:
        try:
            return await self.lease_step()
        except Exception:  # never let the lease loop die: log and retry
            log.exception("scheduler lease step failed")
            return self.renew_every

    async def _lease_loop(self) -> None:
        assert self._stopping is not None
        delay = self.renew_every
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            if self._stopping.is_set():
                return
            delay = await self._lease_once()

    async def _register_jobs(self, now: datetime) -> None:
        for spec in self.ctx.jobs:
            try:
                await self.ctx.db.run(partial(register_job, name=spec.name, interval=spec.interval, now=now))
            except SQLAlchemyError as exc:
                log.warning("could not register job %s (%s)", spec.name, type(exc).__name__)

    def _become_leader(self, now: datetime) -> None:
        self._leader_since = now
        self.ctx.started_at = now
        self.ctx.recovered_all = False
        self._set_leader(True, "acquired the lease")
        if self._aps is not None:
            self._aps.resume()
            wall = datetime.now(UTC)
            for i, spec in enumerate(self.ctx.jobs):  # everything once, now, in table order
                self._aps.modify_job(spec.name, next_run_time=wall + timedelta(milliseconds=50 * i))

    def _step_down(self, reason: str) -> None:
        if self._aps is not None and self._aps.running:
            self._aps.pause()
        self._lease_until = None
        self._set_leader(False, reason)

    def _set_leader(self, leader: bool, reason: str) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        if leader:
            log.info("scheduler %s is the leader: running the jobs (%s)", self.owner, reason)
        else:
            log.info("scheduler %s is no longer the leader (%s)", self.owner, reason)
        if self._on_leadership is not None:
            try:
                self._on_leadership(leader, reason)
            except Exception:
                log.exception("on_leadership hook failed")

    async def _fire(self, name: str) -> None:
        """What APScheduler calls: run the job if (still) the leader."""
        if not self.is_leader or (self._stopping is not None and self._stopping.is_set()):
            return
        task = asyncio.current_task()
        if task is not None:
            self._running[task] = name
        try:
            self._last[name] = await run_job(self.ctx, name)
        finally:
            if task is not None:
                self._running.pop(task, None)


def _trigger(spec: JobSpec) -> IntervalTrigger | CronTrigger:
    if spec.at_minute is not None:
        return CronTrigger(minute=spec.at_minute, timezone=UTC)
    return IntervalTrigger(seconds=spec.interval.total_seconds(), timezone=UTC)


def _grace(spec: JobSpec) -> int:
    """A run late by less than one interval still happens (once, coalesced); later ones are dropped."""
    return max(1, int(spec.interval.total_seconds()))
