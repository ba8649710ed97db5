"""What every listener needs, in one object: the core services it calls, roles, the status source, the notifier.

:class:`Deps` is built once per process by :func:`gatebot.runtime.build_slack` and captured by the
listeners' closures (Bolt cannot inject custom keyword arguments). It also carries the small pieces of
per-process state the listeners share: locks that serialise a draft's placement, and the ids of the
Events API deliveries already handled (Slack retries with the same ``event_id``).

:class:`StatusSource` is what the Slack layer reads about alerts, the Gate circuit, jobs and the
scheduler; :mod:`gatebot.monitor` implements it (a module satisfies the protocol). :class:`Scheduler`
is what ``gatebot serve`` may run next to the web app.

Nothing happens at import time. Must not import the scheduler library.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from gatebot.alerts import OpenAlert
from gatebot.bulk import BulkService
from gatebot.clock import Clock
from gatebot.config import Settings
from gatebot.gate import GateClient
from gatebot.gate.models import Health
from gatebot.orders import OrderService
from gatebot.slack.blocks.common import HealthCheck
from gatebot.slack.roles import Roles
from gatebot.store import repo
from gatebot.store.db import Database

if TYPE_CHECKING:
    from gatebot.slack.notifier import Notifier

__all__ = ["Deps", "JobStatusView", "Scheduler", "StatusReport", "StatusSource"]

log = logging.getLogger(__name__)

#: How many Events API ``event_id``s are remembered to drop Slack's retries.
SEEN_EVENTS = 2048


class JobStatusView(Protocol):
    """One scheduled job as ``StatusSource.job_status`` reports it."""

    @property
    def name(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def last_success(self) -> datetime | None: ...
    @property
    def last_error(self) -> str | None: ...


class StatusSource(Protocol):
    """Alerts, circuit, jobs and scheduler as the store records them, read inside one unit of work
    (``await db.run(...)``); :mod:`gatebot.health.status` is the one implementation."""

    def open_alerts(self, s: Session, now: datetime) -> list[OpenAlert]: ...
    def gate_down(self, s: Session) -> bool: ...
    def job_status(self, s: Session, now: datetime) -> Sequence[JobStatusView]: ...
    def scheduler_status(self, s: Session, now: datetime) -> dict[str, Any]: ...


class Scheduler(Protocol):
    """The job scheduler ``run_http``/``run_socket`` start and stop with the app (``gatebot.scheduler``)."""

    async def start(self) -> None: ...
    async def shutdown(self) -> None: ...
    def status(self) -> dict[str, Any]: ...


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO strings, Decimals and timedeltas as strings/seconds (for /healthz)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass
class StatusReport:
    """The system's health as ``/healthz``, ``/gate health`` and App Home show it.

    ``circuit_open``/``jobs``/``lease`` are ``None``/empty when they could not be read (database down).
    ``lease`` is the scheduler lease as the database records it (some instance runs the jobs);
    ``local_scheduler`` the status of the scheduler running in this process, if any.
    """

    at: datetime
    database_ok: bool
    database_error: str | None = None
    gate: Health | None = None
    circuit_open: bool | None = None
    jobs: list[JobStatusView] = field(default_factory=list)
    lease: dict[str, Any] | None = None
    local_scheduler: dict[str, Any] | None = None

    @property
    def scheduler_ok(self) -> bool:
        """Some instance holds the scheduler lease, and this process's scheduler (if any) is running."""
        lease_ok = self.lease is None or bool(self.lease.get("active", True))
        local_ok = self.local_scheduler is None or bool(self.local_scheduler.get("running", True))
        return lease_ok and local_ok

    @property
    def ok(self) -> bool:
        """Database reachable, Gate circuit closed, jobs on time, scheduler running (and Gate's /health
        answering, when it was probed)."""
        return (self.database_ok and self.circuit_open is False and all(j.ok for j in self.jobs)
                and self.scheduler_ok and (self.gate is None or self.gate.ok))

    def checks(self) -> list[HealthCheck]:
        """One :class:`HealthCheck` per part, for the Block Kit builders."""
        checks = [HealthCheck("Database", self.database_ok,
                              "reachable" if self.database_ok else f"unreachable ({self.database_error})", self.at)]
        if self.gate is not None:
            checks.append(HealthCheck("Gate API /health", self.gate.ok, self.gate.detail, self.at))
        if self.circuit_open is not None:
            checks.append(HealthCheck(
                "Gate circuit", not self.circuit_open,
                "open: Gate is failing, new orders are refused until it recovers" if self.circuit_open
                else "closed: orders go through"))
        for job in self.jobs:
            if job.ok:
                detail = "on time" if job.last_success else "on time, first run pending (just started)"
            else:
                detail = f"not on time: {job.last_error}" if job.last_error else "has not succeeded recently"
            checks.append(HealthCheck(f"Job {job.name}", job.ok, detail, job.last_success, at_label="last success"))
        if self.lease is not None or self.local_scheduler is not None:
            until = self._lease_until()
            checks.append(HealthCheck("Scheduler", self.scheduler_ok, self._scheduler_detail(), until,
                                      at_label="lease until"))
        return checks

    def _lease_until(self) -> datetime | None:
        """When the active scheduler lease expires (a date for Slack to render, not an ISO string)."""
        raw = self.lease.get("expires_at") if self.lease is not None and self.lease.get("active") else None
        if isinstance(raw, datetime):
            return raw
        try:
            return datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            return None

    def _scheduler_detail(self) -> str:
        parts = []
        if self.local_scheduler is not None:
            here = self.local_scheduler
            state = "leader" if here.get("leader") else "standby"
            parts.append(f"this process: {state if here.get('running', True) else 'stopped'}")
        if self.lease is not None:
            if self.lease.get("active"):
                parts.append(f"jobs run on {self.lease.get('holder')}")
            else:
                parts.append("no instance holds the scheduler lease: jobs are not running")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "degraded",
            "at": self.at.isoformat(),
            "database": {"ok": self.database_ok, **({"error": self.database_error} if self.database_error else {})},
            "gate": {
                "circuit_open": self.circuit_open,
                **({"health": {"ok": self.gate.ok, "status_code": self.gate.status_code,
                               "detail": self.gate.detail}} if self.gate is not None else {}),
            },
            "jobs": [{"name": j.name, "ok": j.ok, "last_success": jsonable(j.last_success),
                      "last_error": j.last_error, "interval_s": jsonable(getattr(j, "interval", None))}
                     for j in self.jobs],
            "scheduler": {"ok": self.scheduler_ok, "lease": jsonable(self.lease),
                          "this_process": jsonable(self.local_scheduler)},
        }


@dataclass
class Deps:
    """The listeners' dependencies: the core services they call (not the whole runtime). ``gate`` is only
    for the ``/health`` probe and the deposits list. ``balance_wait`` bounds the modal's balance check
    (3 s budget)."""

    settings: Settings
    db: Database
    clock: Clock
    orders: OrderService
    gate: GateClient
    roles: Roles
    status: StatusSource
    #: Bulk batches (``/gate bulk``, the batch message's buttons, ``/gate order B12``).
    bulk: BulkService
    notifier: Notifier | None = None
    scheduler: Scheduler | None = None
    balance_wait: float = 1.5
    #: How long ``/gate balance`` waits for Gate before showing the last known balances.
    command_balance_wait: float = 4.0
    _seen_events: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def now(self) -> datetime:
        return self.clock.now()

    # -- shared state ----------------------------------------------------------------------------------
    async def record_audit(self, *, actor: str, action: str, target: str | None, allowed: bool,
                           detail: str | None = None) -> None:
        """Record who did (or was refused) what, off the event loop. ``detail`` is for people: never a code
        or an account."""
        now = self.now()
        await self.db.run(lambda s: repo.audit(s, actor=actor, action=action, target=target, allowed=allowed,
                                               detail=detail, now=now))
        if not allowed:
            log.info("refused %s to %s (%s)", action, actor, detail or "no role")

    def first_delivery(self, event_id: str | None) -> bool:
        """``False`` when this Events API ``event_id`` was already handled (a Slack retry)."""
        if not event_id:
            return True
        if event_id in self._seen_events:
            return False
        self._seen_events[event_id] = None
        while len(self._seen_events) > SEEN_EVENTS:
            self._seen_events.popitem(last=False)
        return True

    # -- status ------------------------------------------------------------------------------------------
    async def status_report(self, *, probe_gate: bool) -> StatusReport:
        """Database, Gate circuit, jobs and scheduler; ``probe_gate`` also asks Gate's ``/health`` now."""
        now = self.now()
        report = StatusReport(at=now, database_ok=True)
        try:
            report.circuit_open, report.jobs, report.lease = await self.db.run(lambda s: self._stored_status(s, now))
        except SQLAlchemyError as exc:
            report.database_ok = False
            report.database_error = type(exc).__name__
        if probe_gate:
            report.gate = await self.gate.health()
        if self.scheduler is not None:
            report.local_scheduler = self.scheduler.status()
        return report

    def _stored_status(self, s: Session, now: datetime) -> tuple[bool, list[JobStatusView], dict[str, Any]]:
        """Circuit, jobs and lease as the store records them (one unit of work; a database that cannot
        answer raises here)."""
        s.execute(text("SELECT 1"))
        return self.status.gate_down(s), list(self.status.job_status(s, now)), self.status.scheduler_status(s, now)
