"""The jobs' self-watch policy: alert when a scheduled job has not succeeded for a few intervals.

Pure: no I/O. Must not import Slack, the scheduler, the store or :mod:`gatebot.jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar

from gatebot.alerts.fields import Count, Flag, Name, UtcTime
from gatebot.alerts.lifecycle import (
    AlertState,
    PolicyState,
    _fire,
    _handling_fields,
    _resolve,
    _with_alert,
    tick,
)
from gatebot.alerts.policy import AlertPolicy, Notification, Rendered, job_key
from gatebot.alerts.text import _aware, _fmt_duration, _fmt_time, _seconds

__all__ = ["JobState", "job_health"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobState(PolicyState):
    """Self-watch of one scheduled job: alert when it has not succeeded for a few intervals."""

    TYPE: ClassVar[str] = "job"
    job: Name
    interval_s: Count = 0
    last_success: UtcTime | None = None
    #: When watching started: the reference for a job that never succeeded.
    watch_since: UtcTime | None = None
    #: Whether the job needs the Gate API (then its alert is held back while the API is down).
    needs_api: Flag = False

    @classmethod
    def new(cls, job: str) -> JobState:
        return cls(alert=AlertState(key=job_key(job)), job=job)

    def render(self, now: datetime) -> Rendered:
        a = self.alert
        last = _fmt_time(self.last_success) if self.last_success else "never"
        fields: dict[str, str] = {"State": self.state_label(), "Last success": last}
        if self.interval_s:
            fields["Runs every"] = _fmt_duration(timedelta(seconds=self.interval_s))
        if a.open and a.opened_at:
            fields["Open since"] = _fmt_time(a.opened_at)
        _handling_fields(a, fields)
        if not a.open:
            why = a.resolved_reason or f"the {self.job} job succeeds"
            return Rendered("ok", f"Job {self.job} running again", f"Resolved: {why}.", fields)
        every = f"; it should succeed every {fields['Runs every']}" if self.interval_s else ""
        if self.last_success is not None:
            text = (f"The {self.job} job has not succeeded since {last} "
                    f"({_fmt_duration(now - self.last_success)} ago){every}.")
        else:
            since = _fmt_time(self.watch_since or a.opened_at or now)
            text = f"The {self.job} job has not succeeded since watching started at {since}{every}."
        return Rendered("warning", f"Job {self.job} not succeeding", text, fields)


def job_health(
    state: JobState,
    last_success: datetime | None,
    interval: timedelta,
    now: datetime,
    policy: AlertPolicy,
    *,
    api_down: bool = False,
) -> tuple[JobState, list[Notification]]:
    """Self-watch: alert when a job has not succeeded for ``job_missed_intervals`` intervals.

    Clears as soon as it succeeds again. A job that never succeeded is measured from the first call
    (``watch_since``). Pass ``last_success = max(last success, process start)`` so a restart after a
    long stop does not alert before the job had a chance to run. With ``api_down`` (for jobs that
    need the API) the alert neither fires, clears nor reminds.
    """
    now = _aware(now, "now")
    if not isinstance(interval, timedelta) or interval <= timedelta(0):
        raise ValueError("interval must be a positive timedelta")
    if last_success is not None:
        last_success = _aware(last_success, "last_success")
    latest = max((t for t in (last_success, state.last_success) if t is not None), default=None)
    s = replace(state, interval_s=_seconds(interval), last_success=latest,
                watch_since=state.watch_since or now)
    if api_down:
        return s, []
    reference = latest or s.watch_since or now
    stale = now - reference > interval * policy.job_missed_intervals
    shown = _fmt_time(latest) if latest else "never"
    notes: list[Notification] = []
    if stale and not s.alert.open:
        s, notes = _fire(s, "warning", now, value=shown)
    elif not stale and s.alert.open:
        before = state.last_success or s.watch_since or s.alert.opened_at or now
        gap = ""
        if latest is not None and latest > before:
            gap = f" after {_fmt_duration(latest - before)} without a success"
        s = _with_alert(s, replace(s.alert, last_value=shown))
        s, notes = _resolve(s, now, why=f"the {s.job} job succeeded at {shown}{gap}")
    s, more = tick(s, now, policy)
    return s, notes + more
