"""The health check: the real Gate calls since the last check and, when due, a ``/health`` probe, fed
to the health policy. N failed probes in a row (whatever the real calls did meanwhile), or N failed real
calls in a row, open the circuit and fire the alert; a probe answering closes it.

Must not import Slack, the scheduler, ``gatebot.jobs`` or httpx (the Gate client is passed in as
anything with an async ``health()``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gatebot.alerts import AlertPolicy, HealthObservation, Notification, probe_due
from gatebot.alerts import stored as alert_store
from gatebot.gate.models import Health
from gatebot.health.calls import CallRecorder
from gatebot.store.db import Database

__all__ = ["HealthProbe", "check_gate_health"]


class HealthProbe(Protocol):
    """What the health check needs of the Gate client."""

    async def health(self) -> Health: ...


async def check_gate_health(
    db: Database, gate: HealthProbe, calls: CallRecorder | None, now: datetime, policy: AlertPolicy
) -> list[Notification]:
    """Feed the real calls since the last check and, when due (it backs off while down), a probe."""
    observations = [
        HealthObservation(ok=ok, source="call", detail=None if ok else f"{label} call failed")
        for label, ok in (calls.drain() if calls is not None else [])
    ]
    if probe_due(await db.run(alert_store.health_state), now):
        probe = await gate.health()
        observations.append(HealthObservation(ok=probe.ok, source="probe", detail=probe.detail or None))
    return await db.run(lambda s: alert_store.observe_health(s, observations, now, policy))
