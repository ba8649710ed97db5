"""Scheduled jobs: what runs, how often, and on exactly one instance.

What lives here
    * The job bodies — plain ``async def run_<job>(ctx)`` functions over a :class:`JobContext`, callable
      directly (tests drive them with a :class:`~gatebot.clock.ManualClock`; nothing in them sleeps or
      reads the wall clock): catalog refresh, order tracking, order recovery, balance check, health
      check, deposit watch, daily digest, self-watch and the alert tick. They call the core
      (:class:`~gatebot.orders.OrderService`, :mod:`gatebot.monitor`) and hand what people should see
      to a :class:`~gatebot.monitor.Poster`.
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
:class:`~gatebot.monitor.Poster`. The only module besides ``runtime``/``cli`` that imports APScheduler.
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
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from gatebot import alerts, gate, monitor
from gatebot.alerts import AlertPolicy, BalanceReading, HealthObservation, Notification
from gatebot.clock import Clock
from gatebot.config import Settings, Thresholds
from gatebot.gate.models import Deposit
from gatebot.money import Money
from gatebot.monitor import CallRecorder, DepositNotice, Digest, LogPoster, Poster
from gatebot.orders import GateDown, OrderService, TrackResult
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
#: The deposit watch walks at most this many pages of deposits per run.
MAX_DEPOSIT_PAGES = 20
DEPOSIT_BASELINE_KEY = "deposits:baseline"
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


class BalanceUnavailable(Exception):
    """Gate did not answer the balance request (a cached copy does not count as a reading)."""


class NotDelivered(Exception):
    """Slack did not take a message that must go out (the digest): the job fails and retries."""


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
    """Run one job once: no overlap with itself, skipped while the API it needs is down, every
    exception caught (logged without secrets, counted in its record), outcome recorded."""
    spec = ctx.spec(job) if isinstance(job, str) else job
    lock = ctx.locks.setdefault(spec.name, asyncio.Lock())
    started = ctx.clock.now()
    if lock.locked():
        log.info("job %s is still running; this run is skipped", spec.name)
        return JobOutcome(spec.name, ok=False, started=started, finished=started, skipped="already running")
    async with lock:
        if spec.needs_api and _circuit_open(ctx):
            reason = "Gate API down (circuit open)"
            _record(ctx, spec, started, started, skipped=reason)
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
            _record(ctx, spec, started, finished, error=error)
            return JobOutcome(spec.name, ok=False, started=started, finished=finished, error=error)
        finished = ctx.clock.now()
        _record(ctx, spec, started, finished)
        return JobOutcome(spec.name, ok=True, started=started, finished=finished, result=result)


def _circuit_open(ctx: JobContext) -> bool:
    try:
        return monitor.circuit_open(ctx.db)
    except SQLAlchemyError as exc:
        log.warning("could not read the Gate circuit (%s); running the job anyway", type(exc).__name__)
        return False


def _record(ctx: JobContext, spec: JobSpec, started: datetime, finished: datetime, *,
            error: str | None = None, skipped: str | None = None) -> None:
    try:
        monitor.record_job_run(ctx.db, spec.name, interval=spec.interval, started=started, finished=finished,
                               error=error, skipped=skipped)
    except SQLAlchemyError as exc:
        log.warning("could not record the run of job %s (%s)", spec.name, type(exc).__name__)


# -- job bodies ---------------------------------------------------------------------------------------------------


async def run_catalog_refresh(ctx: JobContext) -> int:
    """Reload Gate's catalog into the store (products added, changed, gone inactive)."""
    return await ctx.orders.refresh_catalog()


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


async def run_balance_check(ctx: JobContext) -> list[Notification]:
    """Read the balances, remember them, and feed each configured currency's low-balance alert.

    Each reading carries the last 24 hours' spend (for the runway) and, when a deposit posted since the
    previous reading, that as the cause of a possible all-clear.
    """
    snapshot = await ctx.orders.balances()
    if snapshot.cached:
        raise BalanceUnavailable("Gate did not answer the balance request; only an old copy is known")
    now = ctx.clock.now()
    monies = [b.money() for b in snapshot.balances]
    previous = monitor.record_readings(ctx.db, monies, now)
    monitor.ensure_digest_baseline(ctx.db, monies, now)
    by_currency = {m.currency: m for m in monies}
    notes: list[Notification] = []
    for currency, thresholds in sorted(ctx.thresholds.items()):
        balance = by_currency.get(currency, Money.zero(currency))  # no balance line: nothing available
        # Any deposit posted while the alert is open explains its all-clear (clearing takes several
        # good readings, and the deposit watch may record the deposit after the first of them).
        state = monitor.alert_state(ctx.db, alerts.balance_key(currency))
        opened = state.alert.opened_at if state is not None and state.alert.open else None
        before = previous.get(currency)
        reading = BalanceReading(
            balance=balance,
            spent_last_24h=monitor.spent_last_24h(ctx.db, currency, now),
            cause=monitor.deposit_cause(ctx.db, currency, opened or (before.at if before else None)),
        )
        notes += monitor.check_balance(ctx.db, reading, now, ctx.policy, thresholds=thresholds)
    await ctx.poster.deliver(notes)
    return notes


async def run_health_check(ctx: JobContext) -> list[Notification]:
    """Feed the real calls since the last run and, when due (it backs off while down), a ``/health``
    probe to the health policy: N failed probes in a row (whatever the real calls did meanwhile), or N
    failed real calls in a row, open the circuit and fire the alert; a probe answering closes it."""
    now = ctx.clock.now()
    observations = [
        HealthObservation(ok=ok, source="call", detail=None if ok else f"{label} call failed")
        for label, ok in (ctx.calls.drain() if ctx.calls is not None else [])
    ]
    if alerts.probe_due(monitor.health_state(ctx.db), now):
        probe = await ctx.gate.health()
        observations.append(HealthObservation(ok=probe.ok, source="probe", detail=probe.detail or None))
    notes = monitor.observe_health(ctx.db, observations, now, ctx.policy)
    await ctx.poster.deliver(notes)
    return notes


async def _fetch_deposits(client: gate.GateClient, known_pending: set[int], *, everything: bool) -> list[Deposit]:
    """Newest-first pages until every deposit we know as pending was seen again (it may have posted),
    or all of them when ``everything`` (the first run)."""
    found: list[Deposit] = []
    missing = set(known_pending)
    for page in range(1, MAX_DEPOSIT_PAGES + 1):
        listing = await client.list_deposits(page=page, page_size=100)
        found += listing.items
        missing -= {d.id for d in listing.items}
        if not listing.has_more or not listing.items or (not everything and not missing):
            break
    return found


async def run_deposit_watch(ctx: JobContext) -> list[DepositNotice]:
    """Record Gate's deposits; announce each newly posted one and resume the orders waiting for funds in
    its currency (same keys). The first run only takes note of the history (no flood of old news).

    A deposit is marked announced only once the poster is done with it, so one that could not be
    announced (Slack down, process stopped) is announced by a later run.
    """
    now = ctx.clock.now()
    with ctx.db.session() as s:
        known_pending = {d.id for d in repo.unannounced_deposits(s, status="pending")}
        first_run = repo.kv_get(s, DEPOSIT_BASELINE_KEY) is None
    deposits = await _fetch_deposits(ctx.gate, known_pending, everything=first_run)
    with ctx.db.session() as s:
        repo.record_deposits(s, deposits, now)
        todo = repo.unannounced_deposits(s)
        if first_run:
            repo.mark_announced(s, [d.id for d in todo], now)
            repo.kv_set(s, DEPOSIT_BASELINE_KEY, {"at": now, "seen": len(deposits)}, now)
            log.info("deposit watch: %d deposits on record; only new postings are announced from now on",
                     len(deposits))
            return []
    resumed: dict[str, int] = {}
    for currency in sorted({d.currency for d in todo}):
        resumed[currency] = await ctx.orders.resume_waiting(currency)
    last_of_currency = {d.currency: d.id for d in todo}
    notices: list[DepositNotice] = []
    for d in todo:
        notice = DepositNotice(
            deposit_id=d.id, amount=d.money(), method=d.method, external_ref=d.external_ref,
            posted_at=d.posted_at,
            resumed=resumed.get(d.currency, 0) if last_of_currency[d.currency] == d.id else 0,
        )
        if await ctx.poster.announce_deposit(notice):
            with ctx.db.session() as s:
                repo.mark_announced(s, [d.id], ctx.clock.now())
        notices.append(notice)
    return notices


async def run_daily_digest(ctx: JobContext) -> Digest | None:
    """Send the finance digest when one is due (daily at ``digest_hour`` UTC; once after downtime).

    Opening balance (the last digest's closing, or the first reading), deposits, spend and closing
    balance per currency; a closing balance that differs from opening + deposits - spend is called out.
    When Gate cannot be read, the closing balances are the last readings (with their time).
    """
    now = ctx.clock.now()
    if not monitor.digest_due(ctx.db, now, ctx.digest_hour):
        return None
    closing: dict[str, Money] | None = None
    closing_at: datetime | None = None
    if not _circuit_open(ctx):
        try:
            snapshot = await ctx.orders.balances()
        except (gate.GateError, GateDown) as exc:
            log.warning("digest: could not read the balances (%s); using the last readings", describe_error(exc))
        else:
            if not snapshot.cached:
                closing = {b.money().currency: b.money() for b in snapshot.balances}
                closing_at = now
                monitor.record_readings(ctx.db, closing.values(), now)
    if closing is None:
        readings = monitor.last_readings(ctx.db)
        closing = {cur: r.balance for cur, r in readings.items()}
        closing_at = min((r.at for r in readings.values()), default=None)
    digest = monitor.build_digest(ctx.db, now, closing=closing, closing_at=closing_at)
    if not await ctx.poster.send_digest(digest):
        raise NotDelivered("the daily digest could not be posted; it is retried at the next run")
    monitor.commit_digest(ctx.db, digest)
    return digest


async def run_self_watch(ctx: JobContext) -> list[Notification]:
    """A job that has not succeeded for three intervals raises its own alert (cleared when it succeeds).

    Grace: nothing is late before this instance became the leader (``ctx.started_at``), and a job that
    needs the Gate API is not late before the API came back.
    """
    now = ctx.clock.now()
    records = monitor.job_records(ctx.db)
    health = monitor.health_state(ctx.db)
    api_up_since = health.last_change_at if not health.down else None
    notes: list[Notification] = []
    for spec in ctx.jobs:
        if not spec.watched:
            continue
        record = records.get(spec.name)
        candidates = [record.last_success if record else None, ctx.started_at,
                      api_up_since if spec.needs_api else None]
        reference = max((t for t in candidates if t is not None), default=None)
        notes += monitor.check_job(ctx.db, spec.name, reference, spec.interval, now, ctx.policy,
                                   needs_api=spec.needs_api)
    await ctx.poster.deliver(notes)
    return notes


async def run_alert_tick(ctx: JobContext) -> list[Notification]:
    """Reminders, snooze endings, reposts of alerts whose message never went out, flapping settling."""
    notes = monitor.tick(ctx.db, ctx.clock.now(), ctx.policy)
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
) -> JobContext:
    """The job context of one process (``gatebot.runtime.job_context`` passes the core's services).
    ``calls``: the :class:`~gatebot.monitor.CallRecorder` the Gate client reports its attempts to."""
    return JobContext(
        db=db, clock=clock, orders=orders, gate=gate, poster=poster or LogPoster(),
        policy=AlertPolicy.from_settings(settings), thresholds=dict(settings.gatebot_low_balance),
        jobs=tuple(jobs if jobs is not None else default_jobs(settings)), calls=calls,
        digest_hour=settings.gatebot_digest_hour,
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
        lease_name: str = monitor.SCHEDULER_LEASE,
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
                with self.ctx.db.session() as s:
                    repo.release_lease(s, self.lease_name, self.owner)
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
            with self.ctx.db.session() as s:
                won = repo.try_acquire_lease(s, self.lease_name, self.owner, now, self.lease_ttl)
            if not won:
                with self.ctx.db.session() as s:
                    holder = repo.lease_holder(s, self.lease_name, now=now)
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

    def _become_leader(self, now: datetime) -> None:
        self._leader_since = now
        self.ctx.started_at = now
        self.ctx.recovered_all = False
        for spec in self.ctx.jobs:
            try:
                monitor.register_job(self.ctx.db, spec.name, spec.interval, now)
            except SQLAlchemyError as exc:
                log.warning("could not register job %s (%s)", spec.name, type(exc).__name__)
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
