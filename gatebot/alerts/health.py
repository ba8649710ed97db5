"""The Gate API health policy: debounce, the circuit, probe back-off, flapping.

:func:`circuit_open` is the one answer to "is the Gate down?" for a health state; the store side
(:mod:`gatebot.health.circuit`) reads the stored state and asks it. Pure: no I/O.
Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar, Literal, Self

from gatebot.alerts.fields import Count, Flag, Text, Times, UtcTime
from gatebot.alerts.lifecycle import (
    AlertState,
    PolicyState,
    _emit,
    _fire,
    _handling_fields,
    _handling_label,
    _resolve,
    _with_alert,
    tick,
)
from gatebot.alerts.policy import HEALTH_KEY, AlertPolicy, Notification, Rendered
from gatebot.alerts.text import _aware, _clip, _fmt_duration, _fmt_time, _seconds

__all__ = ["HealthObservation", "HealthState", "check_health", "circuit_open", "probe_due"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthObservation:
    """A ``/health`` probe (``source="probe"``) or a real Gate call (``source="call"``).

    ``ok`` is whether the API answered: transport errors, timeouts and 5xx are failures; a 4xx
    answer (e.g. ``insufficient_balance``) is a success — the API is up. ``detail`` is a short reason
    such as ``"HTTP 503"`` or ``"timeout"``; never a request body, URL with credentials or API key.
    """

    ok: bool
    source: Literal["probe", "call"] = "probe"
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthState(PolicyState):
    """Gate API health: debounce counters, the circuit (``down``), probe back-off and flapping."""

    TYPE: ClassVar[str] = "health"
    #: The debounced status: ``True`` after ``health_fail_after`` failures; the circuit is open.
    down: Flag = False
    #: Consecutive failed ``/health`` probes (reset only by a probe that answers) and consecutive
    #: answering probes while down: the probe is its own signal, whatever real calls do meanwhile.
    failures: Count = 0
    successes: Count = 0
    failing_since: UtcTime | None = None
    #: Consecutive failed real calls (reset by a real call that works, or when the API recovers): the
    #: second signal that may also open the circuit. It never closes it: recovery needs the probe.
    call_failures: Count = 0
    call_failing_since: UtcTime | None = None
    down_since: UtcTime | None = None
    #: The health job skips probes until then (``None``: probe on the normal schedule).
    next_probe_at: UtcTime | None = None
    backoff_s: Count = 0
    #: Times of up/down changes inside the flap window.
    changes: Times = ()
    last_change_at: UtcTime | None = None
    flapping: Flag = False
    flapping_since: UtcTime | None = None
    last_error: Text | None = None

    @classmethod
    def new(cls) -> HealthState:
        return cls(alert=AlertState(key=HEALTH_KEY))

    def state_label(self) -> str:
        if self.alert.open and self.flapping:
            return "flapping"
        return _handling_label(self.alert)

    def reminders_paused(self) -> bool:
        return self.flapping

    def _on_tick(self, now: datetime, policy: AlertPolicy) -> tuple[Self, list[Notification]]:
        if not self.flapping or self.last_change_at is None or now - self.last_change_at < policy.flap_quiet:
            return self, []
        quiet_since = self.last_change_at
        s = replace(self, flapping=False, flapping_since=None, changes=())
        if not s.alert.open:
            return s, []
        if s.down:
            s = _with_alert(s, replace(s.alert, level="critical", last_value="down"))
            note = (f"Stopped flapping, but the Gate API is down: failing since "
                    f"{_fmt_time(s.down_since or quiet_since)}. New orders are refused.")
            return _emit(s, now, reason="settled", thread=("critical", note))
        why = f"the Gate API is stable again, up since {_fmt_time(quiet_since)} after flapping"
        return _resolve(s, now, why=why, reason="settled")

    def render(self, now: datetime) -> Rendered:
        a = self.alert
        fields: dict[str, str] = {"State": self.state_label()}
        if a.open and self.flapping and self.flapping_since:
            fields["Flapping since"] = _fmt_time(self.flapping_since)
        elif self.down_since and (self.down or a.open):
            fields["Down since"] = _fmt_time(self.down_since)
        elif self.down_since and a.resolved_at and self.down_since <= a.resolved_at:
            fields["Was down"] = f"{_fmt_time(self.down_since)} to {_fmt_time(a.resolved_at)}"
        if a.open and not self.flapping:
            fields["Circuit"] = "open: new orders are refused" if self.down else "closed"
            if self.last_error:
                fields["Last error"] = self.last_error
        _handling_fields(a, fields)
        if not a.open:
            why = a.resolved_reason or "the Gate API answers"
            return Rendered("ok", "Gate API recovered", f"Resolved: {why}.", fields)
        if self.flapping:
            since = _fmt_time(self.flapping_since or now)
            text = (f"The Gate API keeps going up and down (since {since}). New orders are refused "
                    "whenever it is down and balance alerts are held back. This message stays as it is "
                    "until the API has been stable for a while.")
            return Rendered("warning", "Gate API flapping", text, fields)
        since_dt = self.down_since or a.opened_at or now
        text = (f"The Gate API has been failing since {_fmt_time(since_dt)} "
                f"({_fmt_duration(now - since_dt)}). "
                "New orders are refused until it recovers; balance alerts are held back.")
        return Rendered("critical", "Gate API down", text, fields)


def circuit_open(state: HealthState) -> bool:
    """True while the API counts as down: refuse new orders up front, hold back balance alerts."""
    return state.down


def probe_due(state: HealthState, now: datetime) -> bool:
    """Whether the health job should probe now (it skips probes while backing off)."""
    now = _aware(now, "now")
    return state.next_probe_at is None or now >= state.next_probe_at


def check_health(
    state: HealthState, observation: HealthObservation, now: datetime, policy: AlertPolicy
) -> tuple[HealthState, list[Notification]]:
    """Feed one probe or real-call outcome to the health policy.

    Two signals, counted apart. ``health_fail_after`` consecutive failed ``/health`` probes make the API
    *down* whatever real calls do in between (a working balance call says nothing about ``/health``);
    ``health_fail_after`` consecutive failed real calls do too, whatever the probe says. Down, the alert
    fires, the circuit opens and probes back off exponentially (``probe_interval``, doubling per failed
    probe, capped at ``probe_backoff_cap``; failed real calls do not move the schedule). Only the probe
    brings it back: ``health_recover_after`` consecutive answering probes close the circuit and resolve
    the alert with the outage duration (a working real call alone does not). ``flap_changes`` up/down
    changes within ``flap_window`` turn the (same) message into one "flapping" state that stays quiet
    until ``flap_quiet`` passes without a change.
    """
    now = _aware(now, "now")
    s, changed = _count(state, observation, now, policy)
    if not s.down and (s.failures >= policy.health_fail_after or s.call_failures >= policy.health_fail_after):
        changed = "down"
        since = [t for t, n in ((s.failing_since, s.failures), (s.call_failing_since, s.call_failures))
                 if t is not None and n >= policy.health_fail_after]
        s = replace(s, down=True, successes=0, down_since=min(since, default=now),
                    backoff_s=_seconds(policy.probe_interval), next_probe_at=now + policy.probe_interval,
                    changes=(*s.changes, now), last_change_at=now)
    s = replace(s, changes=tuple(t for t in s.changes if now - t < policy.flap_window))
    notes: list[Notification] = []
    if changed is not None and not s.flapping:
        if len(s.changes) >= policy.flap_changes:
            s, notes = _start_flapping(s, now)
        elif changed == "down":
            s, notes = _fire(s, "critical", now, value="down")
        else:
            outage = now - (s.down_since or now)
            s, notes = _resolve(s, now, why=f"the Gate API answers again after {_fmt_duration(outage)} down")
    # While flapping a change is deliberately silent: the circuit follows it, the message does not.
    s, more = tick(s, now, policy)
    return s, notes + more


def _count(
    s: HealthState, observation: HealthObservation, now: datetime, policy: AlertPolicy
) -> tuple[HealthState, Literal["up", "down"] | None]:
    """Count one outcome in its signal's streak; ``"up"`` when the probe closes the circuit."""
    detail = None if observation.ok else \
        _clip(observation.detail) if observation.detail else f"{observation.source} failed"
    if observation.source == "call":
        if observation.ok:
            return replace(s, call_failures=0, call_failing_since=None), None
        return replace(s, call_failures=s.call_failures + 1, call_failing_since=s.call_failing_since or now,
                       last_error=detail), None
    if observation.ok:
        s = replace(s, failures=0, successes=s.successes + 1, failing_since=None, next_probe_at=None,
                    backoff_s=0)
        if s.down and s.successes >= policy.health_recover_after:
            return replace(s, down=False, call_failures=0, call_failing_since=None, changes=(*s.changes, now),
                           last_change_at=now), "up"
        return s, None
    s = replace(s, failures=s.failures + 1, successes=0, failing_since=s.failing_since or now,
                last_error=detail)
    if s.down:
        previous = timedelta(seconds=s.backoff_s) if s.backoff_s > 0 else policy.probe_interval
        delay = min(previous * 2, policy.probe_backoff_cap)
        s = replace(s, backoff_s=_seconds(delay), next_probe_at=now + delay)
    return s, None


def _start_flapping(s: HealthState, now: datetime) -> tuple[HealthState, list[Notification]]:
    a = s.alert
    first = s.changes[0] if s.changes else now
    if a.open:
        alert = replace(a, level="warning", last_value="flapping")
    else:  # reopen the message of the outage that just ended, if there is one
        alert = replace(a, open=True, level="warning", opened_at=first, acked_by=None, acked_at=None,
                        snoozed_until=None, snoozed_by=None, last_value="flapping",
                        fired_count=a.fired_count + 1, resolved_at=None, resolved_reason=None)
    s = replace(s, alert=alert, flapping=True, flapping_since=first)
    note = (f"Flapping: {len(s.changes)} up/down changes since {_fmt_time(first)}. New orders are refused "
            "whenever the API is down. No message per flap; this settles after a quiet period.")
    return _emit(s, now, reason="flapping", thread=("warning", note))
