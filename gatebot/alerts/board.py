"""The set of alerts: which are open (App Home, ``/gate health``) and which are held back.

:func:`inhibited` is the one inhibition rule: while the Gate API is down (its circuit is open)
balance alerts — and job alerts of jobs that need the API — neither fire, clear nor remind.

Pure: no I/O. Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gatebot.alerts.balance import BalanceState
from gatebot.alerts.job import JobState
from gatebot.alerts.lifecycle import PolicyState, _with_alert
from gatebot.alerts.policy import Severity
from gatebot.alerts.text import _aware

__all__ = ["OpenAlert", "inhibited", "open_alerts"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2, "ok": 3}


def inhibited(state: PolicyState, *, api_down: bool) -> bool:
    """Whether ``state`` is held back because the Gate API is down: balance alerts, and the alerts of
    jobs that need the API (the health alert itself never is)."""
    return api_down and (isinstance(state, BalanceState) or (isinstance(state, JobState) and state.needs_api))


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """One open alert as App Home lists it."""

    key: str
    title: str
    severity: Severity
    state: str
    since: datetime | None
    acked_by: str | None
    snoozed_until: datetime | None
    value: str | None
    channel: str | None
    ts: str | None


def open_alerts(
    states: Mapping[str, PolicyState] | Iterable[PolicyState], *, now: datetime | None = None
) -> list[OpenAlert]:
    """The open alerts, most severe first, then oldest first. With ``now``, an expired snooze that no
    :func:`tick` has ended yet is not shown as snoozed."""
    items = states.values() if isinstance(states, Mapping) else states
    when = _aware(now, "now") if now is not None else None
    out: list[OpenAlert] = []
    for state in items:
        a = state.alert
        if not a.open:
            continue
        snoozed = a.snoozed_until
        if snoozed is not None and when is not None and snoozed <= when:
            state = _with_alert(state, replace(a, snoozed_until=None, snoozed_by=None))
            snoozed = None
        r = state.render(when or a.last_notified or a.opened_at or _EPOCH)
        out.append(OpenAlert(key=a.key, title=r.title, severity=r.severity, state=state.state_label(),
                             since=a.opened_at, acked_by=a.acked_by, snoozed_until=snoozed,
                             value=a.last_value, channel=a.channel, ts=a.ts))
    far = datetime.max.replace(tzinfo=UTC)
    out.sort(key=lambda o: (_SEVERITY_ORDER[o.severity], o.since or far, o.key))
    return out
