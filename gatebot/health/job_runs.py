"""Job run records: each scheduled job's last run, success, error and skip, and whether it is on time.

One key-value row per job (``jobrun:<name>``) holding a :class:`JobRecord`, changed by atomic
read-modify-write. :func:`job_status` is what ``/healthz`` shows; :func:`scheduler_status` says who
holds the scheduler lease. The stored form is the one gatebot has always written (times stay times
for the key-value store, the interval is ``interval_ms``); a field of the wrong type reads as its
default rather than losing the record.

Every function takes the ``Session`` of the caller's unit of work and never commits.
Must not import Slack, the scheduler, ``gatebot.jobs`` or httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from annotated_types import Ge
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, WrapValidator, field_serializer
from pydantic_core.core_schema import ValidatorFunctionWrapHandler
from sqlmodel import Session

from gatebot.store import repo
from gatebot.store.monitoring import kv_keys

__all__ = [
    "JOB_PREFIX",
    "MISSED_INTERVALS",
    "SCHEDULER_LEASE",
    "JobRecord",
    "JobStatus",
    "job_records",
    "job_status",
    "record_job_run",
    "register_job",
    "scheduler_status",
]

#: Key-value prefix: one row per job.
JOB_PREFIX = "jobrun:"
#: The lease only one scheduler instance holds.
SCHEDULER_LEASE = "scheduler"
#: A job is late (``/healthz`` not ok, self-watch alert) after this many intervals without success.
MISSED_INTERVALS = 3

_MAX_ERROR = 300


def _or_default(default: Any) -> WrapValidator:
    """Read a field of the wrong type as ``default`` (an old or damaged row still gives a record)."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return default

    return WrapValidator(validate)


_Time = Annotated[datetime | None, Strict(), _or_default(None)]
_Text = Annotated[str | None, Strict(), _or_default(None)]
_Count = Annotated[int, Strict(), Ge(0), _or_default(0)]


def _interval_in(value: Any, handler: ValidatorFunctionWrapHandler) -> timedelta:
    if isinstance(value, timedelta):
        return value
    ms = value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
    return timedelta(milliseconds=ms)


class JobRecord(BaseModel):
    """What the store knows about one scheduled job's runs."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str
    interval: Annotated[timedelta, WrapValidator(_interval_in)] = Field(alias="interval_ms")
    #: When the job was first registered (the reference for a job that never succeeded).
    since: _Time = None
    last_run: _Time = None
    last_success: _Time = None
    last_error: _Text = None
    last_error_at: _Time = None
    last_skip: _Text = None
    last_skip_at: _Time = None
    runs: _Count = 0
    failures: _Count = 0
    consecutive_failures: _Count = 0
    last_duration_ms: Annotated[int | None, Strict(), _or_default(None)] = None

    @field_serializer("interval")
    def _interval_out(self, interval: timedelta) -> int:
        return interval // timedelta(milliseconds=1)

    @classmethod
    def load(cls, name: str, raw: Any) -> JobRecord:
        """The record stored for ``name`` (``raw`` as the key-value store returns it)."""
        data = dict(raw) if isinstance(raw, Mapping) else {}
        data.setdefault("interval_ms", 0)
        return cls.model_validate({**data, "name": name})

    def dump(self) -> dict[str, Any]:
        """The stored form (times as datetimes: the key-value store writes them)."""
        return self.model_dump(by_alias=True)


def register_job(s: Session, name: str, interval: timedelta, now: datetime) -> JobRecord:
    """Create or refresh the record of a scheduled job (its interval; ``since`` on first sight)."""

    def change(raw: Any) -> Any:
        record = JobRecord.load(name, raw) if raw is not None else JobRecord(name=name, interval=interval)
        return record.model_copy(update={"interval": interval, "since": record.since or now}).dump()

    return JobRecord.load(name, repo.kv_update(s, JOB_PREFIX + name, change, now))


def record_job_run(
    s: Session,
    name: str,
    *,
    interval: timedelta,
    started: datetime,
    finished: datetime,
    error: str | None = None,
    skipped: str | None = None,
) -> JobRecord:
    """Count one run of ``name``: a success, a failure (``error``, already free of secrets) or a skip."""

    def change(raw: Any) -> Any:
        r = JobRecord.load(name, raw) if raw is not None else JobRecord(name=name, interval=interval)
        r = r.model_copy(update={"interval": interval, "since": r.since or started})
        if skipped is not None:
            return r.model_copy(update={"last_skip": skipped[:_MAX_ERROR], "last_skip_at": started}).dump()
        ms = max(0, int((finished - started).total_seconds() * 1000))
        update: dict[str, Any] = {"last_run": started, "runs": r.runs + 1, "last_duration_ms": ms}
        if error is None:
            update |= {"last_success": finished, "consecutive_failures": 0}
        else:
            update |= {"last_error": error[:_MAX_ERROR], "last_error_at": finished, "failures": r.failures + 1,
                       "consecutive_failures": r.consecutive_failures + 1}
        return r.model_copy(update=update).dump()

    return JobRecord.load(name, repo.kv_update(s, JOB_PREFIX + name, change, finished))


def job_records(s: Session) -> dict[str, JobRecord]:
    return {key[len(JOB_PREFIX):]: JobRecord.load(key[len(JOB_PREFIX):], repo.kv_get(s, key))
            for key in kv_keys(s, JOB_PREFIX)}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job as ``/healthz`` shows it. ``ok``: it succeeded (or was registered) within
    :data:`MISSED_INTERVALS` intervals."""

    name: str
    interval: timedelta
    last_success: datetime | None
    last_error: str | None
    ok: bool
    last_run: datetime | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    last_skip: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (ISO datetimes) for ``/healthz``."""
        def iso(when: datetime | None) -> str | None:
            return when.astimezone(UTC).isoformat() if when else None

        return {"name": self.name, "interval_s": int(self.interval.total_seconds()),
                "last_success": iso(self.last_success), "last_run": iso(self.last_run),
                "last_error": self.last_error, "last_error_at": iso(self.last_error_at),
                "consecutive_failures": self.consecutive_failures, "last_skip": self.last_skip, "ok": self.ok}


def job_status(s: Session, now: datetime, *, missed_intervals: int = MISSED_INTERVALS) -> list[JobStatus]:
    """Each registered job's last success and last error, and whether it is on time."""
    out: list[JobStatus] = []
    for name, r in sorted(job_records(s).items()):
        reference = r.last_success or r.since
        ok = reference is not None and r.interval > timedelta(0) and \
            now - reference <= r.interval * missed_intervals
        out.append(JobStatus(name=name, interval=r.interval, last_success=r.last_success, last_error=r.last_error,
                             ok=ok, last_run=r.last_run, last_error_at=r.last_error_at,
                             consecutive_failures=r.consecutive_failures, last_skip=r.last_skip))
    return out


def scheduler_status(s: Session, now: datetime) -> dict[str, Any]:
    """Who holds the scheduler lease (``owner`` is ``host:pid:id``), since when, until when."""
    lease = repo.lease_holder(s, SCHEDULER_LEASE)
    if lease is None:
        return {"lease": SCHEDULER_LEASE, "holder": None, "active": False, "acquired_at": None, "expires_at": None}
    return {
        "lease": SCHEDULER_LEASE,
        "holder": lease.owner,
        "active": lease.expires_at > now,
        "acquired_at": lease.acquired_at.isoformat(),
        "expires_at": lease.expires_at.isoformat(),
    }
