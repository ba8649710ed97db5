"""The self-watch: a job that has not succeeded for a few intervals raises its own alert (cleared
when it succeeds again).

Grace: nothing is late before this instance became the leader (``started_at``), and a job that needs
the Gate API is not late before the API came back.

Must not import Slack, the scheduler or ``gatebot.jobs`` (the jobs are described by :class:`WatchedJob`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel import Session

from gatebot.alerts import AlertPolicy, Notification
from gatebot.alerts import stored as alert_store
from gatebot.health.job_runs import job_records
from gatebot.store.db import Database

__all__ = ["WatchedJob", "watch_jobs"]


class WatchedJob(Protocol):
    """A scheduled job as the self-watch sees it (``gatebot.jobs.JobSpec`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def interval(self) -> timedelta: ...
    @property
    def needs_api(self) -> bool: ...
    @property
    def watched(self) -> bool: ...


def _watch(s: Session, jobs: list[WatchedJob], started_at: datetime | None, now: datetime,
           policy: AlertPolicy) -> list[Notification]:
    records = job_records(s)
    health = alert_store.health_state(s)
    api_up_since = health.last_change_at if not health.down else None
    notes: list[Notification] = []
    for job in jobs:
        record = records.get(job.name)
        candidates = [record.last_success if record else None, started_at, api_up_since if job.needs_api else None]
        reference = max((t for t in candidates if t is not None), default=None)
        notes += alert_store.check_job(s, job.name, reference, job.interval, now, policy, needs_api=job.needs_api)
    return notes


async def watch_jobs(
    db: Database, jobs: Iterable[WatchedJob], *, started_at: datetime | None, now: datetime, policy: AlertPolicy
) -> list[Notification]:
    """Run the self-watch of every watched job (one unit of work); returns the notifications."""
    watched = [job for job in jobs if job.watched]
    return await db.run(lambda s: _watch(s, watched, started_at, now, policy))
