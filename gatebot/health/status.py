"""The system's status as the store records it, inside one unit of work: what ``/healthz``, ``/gate health``
and App Home report (``gatebot.slack.deps.StatusSource`` is this module's shape).

Each function takes a session, so an async caller reads all of it in one ``await db.run(...)``:

* :func:`open_alerts` — the alerts that are firing, acknowledged or snoozed;
* :func:`gate_down` — "is the Gate down?" (the health alert's circuit);
* :func:`job_status` — whether each job is on time;
* :func:`scheduler_status` — who holds the scheduler lease.

Only names: the rules and queries live in :mod:`gatebot.alerts.stored` and :mod:`.job_runs`.
Must not import Slack, the scheduler, ``gatebot.jobs`` or httpx.
"""

from __future__ import annotations

from gatebot.alerts.stored import gate_down, open_alerts
from gatebot.health.job_runs import job_status, scheduler_status

__all__ = ["gate_down", "job_status", "open_alerts", "scheduler_status"]
