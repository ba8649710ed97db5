"""Monitoring, database-level: each function opens its own short unit of work on a ``Database``.

The rules and their queries live in the core modules this one wraps, one concern each:

* alert states in the store — :mod:`gatebot.alerts.stored` (the policies: :mod:`gatebot.alerts`);
* "is the Gate down?" — :mod:`gatebot.health.circuit`; real calls — :mod:`gatebot.health.calls`;
* job run records, ``/healthz`` job status, the scheduler lease — :mod:`gatebot.health.job_runs`;
* balance readings — :mod:`gatebot.finance.readings`; spend and deposits — :mod:`gatebot.finance.spend`;
* the daily digest — :mod:`gatebot.finance.digest`; the deposit watch — :mod:`gatebot.finance.deposits`;
* where the jobs post — :mod:`gatebot.poster`.

This module is the synchronous face of those for callers outside a unit of work: the Slack layer's
status source (:func:`open_alerts`, :func:`circuit_open`, :func:`job_status`, :func:`scheduler_status`
— ``gatebot.slack.deps.StatusSource``), the alert buttons, metrics, tools and tests. Each function
takes the :class:`~gatebot.store.db.Database` first and runs ``with db.session()``; async code calls
the core function inside ``await db.run(...)`` instead.

Must not import Slack (slack_bolt/slack_sdk), the scheduler (apscheduler), ``gatebot.jobs`` or httpx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlmodel import Session

from gatebot.alerts import stored as _alerts
from gatebot.alerts.stored import ALERT_PREFIX
from gatebot.finance import digest as _digest
from gatebot.finance import readings as _readings
from gatebot.finance import spend as _spend
from gatebot.finance.deposits import DepositNotice
from gatebot.finance.digest import DIGEST_HISTORY_PREFIX, DIGEST_KEY, Digest, DigestLine
from gatebot.finance.readings import READING_PREFIX, Reading
from gatebot.health import job_runs as _jobs
from gatebot.health.calls import CallRecorder
from gatebot.health.circuit import circuit_open
from gatebot.health.job_runs import JOB_PREFIX, MISSED_INTERVALS, SCHEDULER_LEASE, JobRecord, JobStatus
from gatebot.poster import LogPoster, Poster
from gatebot.store import monitoring as _queries
from gatebot.store.db import Database

__all__ = [
    "ALERT_PREFIX",
    "DIGEST_HISTORY_PREFIX",
    "DIGEST_KEY",
    "JOB_PREFIX",
    "MISSED_INTERVALS",
    "READING_PREFIX",
    "SCHEDULER_LEASE",
    "CallRecorder",
    "DepositNotice",
    "Digest",
    "DigestLine",
    "JobRecord",
    "JobStatus",
    "LogPoster",
    "Poster",
    "Reading",
    "ack_alert",
    "alert_state",
    "all_states",
    "build_digest",
    "check_balance",
    "check_job",
    "circuit_open",
    "commit_digest",
    "deposit_cause",
    "digest_due",
    "digest_history",
    "ensure_digest_baseline",
    "health_state",
    "job_records",
    "job_status",
    "last_digest",
    "last_readings",
    "observe_health",
    "open_alerts",
    "posted_deposits",
    "record_job_run",
    "record_message",
    "record_readings",
    "register_job",
    "scheduler_status",
    "snooze_alert",
    "spent_between",
    "spent_last_24h",
    "tick",
]

P = ParamSpec("P")
T = TypeVar("T")


def _on_db(work: Callable[Concatenate[Session, P], T]) -> Callable[Concatenate[Database, P], T]:
    """``work(session, ...)`` as ``f(db, ...)``: one unit of work of its own."""

    @functools.wraps(work)
    def run(db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with db.session() as s:
            return work(s, *args, **kwargs)

    return run


# alert states
alert_state = _on_db(_alerts.alert_state)
all_states = _on_db(_alerts.all_states)
health_state = _on_db(_alerts.health_state)
open_alerts = _on_db(_alerts.open_alerts)
check_balance = _on_db(_alerts.check_balance)
observe_health = _on_db(_alerts.observe_health)
check_job = _on_db(_alerts.check_job)
tick = _on_db(_alerts.tick)
ack_alert = _on_db(_alerts.ack_alert)
snooze_alert = _on_db(_alerts.snooze_alert)
record_message = _on_db(_alerts.record_message)

# job runs and the scheduler lease
register_job = _on_db(_jobs.register_job)
record_job_run = _on_db(_jobs.record_job_run)
job_records = _on_db(_jobs.job_records)
job_status = _on_db(_jobs.job_status)
scheduler_status = _on_db(_jobs.scheduler_status)

# readings, spend, deposits
record_readings = _on_db(_readings.record_readings)
last_readings = _on_db(_readings.last_readings)
spent_between = _on_db(_spend.spent_between)
spent_last_24h = _on_db(_spend.spent_last_24h)
deposit_cause = _on_db(_spend.deposit_cause)
posted_deposits = _on_db(_queries.posted_deposits)

# the daily digest
last_digest = _on_db(_digest.last_digest)
ensure_digest_baseline = _on_db(_digest.ensure_digest_baseline)
digest_due = _on_db(_digest.digest_due)
build_digest = _on_db(_digest.build_digest)
commit_digest = _on_db(_digest.commit_digest)
digest_history = _on_db(_digest.digest_history)
