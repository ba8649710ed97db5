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
    * :class:`~gatebot.scheduler.Scheduler` runs them (APScheduler and the leader lease).
    ``gatebot clock`` is :meth:`gatebot.runtime.Runtime.run` with only the scheduler (the runtime owns
      the SIGTERM/SIGINT stop sequence).

Intervals come from ``GATEBOT_<JOB>_INTERVAL`` (seconds). The digest job runs hourly on the hour and
sends when a digest is due (daily at ``GATEBOT_DIGEST_HOUR`` UTC), so it also catches up after downtime
or a failed post.

Must not import Slack (slack_bolt/slack_sdk): the Slack poster is passed in as a
:class:`~gatebot.poster.Poster`. It does not import APScheduler: :mod:`gatebot.scheduler` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from gatebot.health.job_runs import record_job_run
from gatebot.health.probe import check_gate_health
from gatebot.health.selfwatch import watch_jobs
from gatebot.logcontext import log_context
from gatebot.orders import GateDown, OrderService, TrackResult
from gatebot.poster import LogPoster, Poster
from gatebot.store.db import Database

__all__ = [
    "ALERT_TICK_INTERVAL",
    "SELF_WATCH_INTERVAL",
    "JobContext",
    "JobOutcome",
    "JobSpec",
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
