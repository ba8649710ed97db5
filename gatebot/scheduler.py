"""The scheduler: the jobs of :mod:`gatebot.jobs` on APScheduler, on exactly one instance.

:class:`Scheduler` — APScheduler 3 (``AsyncIOScheduler``) wiring plus a leader lease in the store: with
several instances only the lease holder runs jobs; the others retry every ``ttl/3`` (and right when the
holder's lease expires), so a dead leader is replaced within one lease period. Each job has
``max_instances=1``, ``coalesce=True`` and a misfire grace of one interval: after downtime a job catches up
once, not once per missed run. ``gatebot clock`` is :meth:`gatebot.runtime.Runtime.run` with only the
scheduler (the runtime owns the SIGTERM/SIGINT stop sequence).

Must not import Slack. The only module besides ``runtime``/``cli`` that imports APScheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from gatebot.health.job_runs import SCHEDULER_LEASE, register_job
from gatebot.jobs import JobContext, JobOutcome, JobSpec, run_job
from gatebot.store import repo

__all__ = ["DEFAULT_LEASE_TTL", "LeadershipHook", "Scheduler", "default_owner"]

log = logging.getLogger(__name__)

#: Default scheduler lease: renewed every 10 s, a dead leader is replaced within 30 s.
DEFAULT_LEASE_TTL = 30.0


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
