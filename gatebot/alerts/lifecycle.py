"""The life cycle every alert shares: open, ack, snooze, reminders, reposts and its Slack message.

:class:`AlertState` is the part of every stored state that this life cycle owns; :class:`PolicyState`
is the base of the per-policy states (:mod:`.balance`, :mod:`.health`, :mod:`.job`). Whenever an
``update`` or ``thread`` is due but the alert has no message ts (the poster failed), one ``post`` of
the current state is emitted instead. ``post`` and ``thread`` restart the reminder clock; ``update``
(a silent edit) does not.

Pure: no I/O, no clock reads (``now`` is an argument). Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar, Self, TypeVar

from gatebot.alerts.fields import Count, Flag, Name, Text, UtcTime
from gatebot.alerts.policy import (
    _RANK,
    MAX_SNOOZE,
    AlertPolicy,
    Level,
    Notification,
    Rendered,
    Severity,
)
from gatebot.alerts.text import _actor, _aware, _fmt_duration, _fmt_time, _who

__all__ = ["AlertState", "PolicyState", "ack", "snooze", "tick", "with_message"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertState:
    """The life cycle of one alert: open or not, level, who acked, snooze, its Slack message.

    ``channel``/``ts`` survive the all-clear (the resolved message may still be edited, and a health
    alert that starts flapping reuses it); a new firing starts a new message.
    """

    key: Name
    open: Flag = False
    level: Level | None = None
    opened_at: UtcTime | None = None
    acked_by: Text | None = None
    acked_at: UtcTime | None = None
    snoozed_until: UtcTime | None = None
    snoozed_by: Text | None = None
    #: When a post or thread reply last went out (the reminder clock).
    last_notified: UtcTime | None = None
    channel: Text | None = None
    ts: Text | None = None
    #: The value the message shows (e.g. ``USD 420.00``), to edit it only when it changes.
    last_value: Text | None = None
    #: How many times this alert has fired (a flapping reopen counts).
    fired_count: Count = 0
    resolved_at: UtcTime | None = None
    resolved_reason: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyState(ABC):
    """Base of the per-policy states: the shared :class:`AlertState` plus the policy's own memory."""

    TYPE: ClassVar[str]
    alert: AlertState

    @property
    def key(self) -> str:
        return self.alert.key

    @abstractmethod
    def render(self, now: datetime) -> Rendered:
        """The message as it should read at ``now``."""

    def state_label(self) -> str:
        """``firing`` / ``acked`` / ``snoozed`` / ``resolved`` (health adds ``flapping``)."""
        return _handling_label(self.alert)

    def reminders_paused(self) -> bool:
        """Policy-specific reason to hold reminders while open (health: flapping)."""
        return False

    def _on_tick(self, now: datetime, policy: AlertPolicy) -> tuple[Self, list[Notification]]:
        """Policy-specific time-driven transitions (health: flapping settles)."""
        return self, []


S = TypeVar("S", bound=PolicyState)


def with_message(state: S, channel: str, ts: str) -> S:
    """Record the Slack message the poster created for the alert's ``post``."""
    if not channel or not ts:
        raise ValueError("with_message needs a channel id and a message ts")
    return _with_alert(state, replace(state.alert, channel=channel, ts=ts))


def ack(state: S, *, by: str, now: datetime) -> tuple[S, list[Notification]]:
    """Acknowledge an open alert: no more reminders; level changes are still announced.

    A closed alert, or a repeated ack by the same person, changes nothing.
    """
    now = _aware(now, "now")
    by = _actor(by)
    a = state.alert
    if not a.open or a.acked_by == by:
        return state, []
    acked = _with_alert(state, replace(a, acked_by=by, acked_at=now))
    note = f"Acknowledged by {_who(by)}: no more reminders; level changes are still announced."
    return _emit(acked, now, reason="acked", thread=("info", note))


def snooze(state: S, *, by: str, duration: timedelta, now: datetime) -> tuple[S, list[Notification]]:
    """Silence reminders for ``duration`` (see :data:`SNOOZE_CHOICES`); :func:`tick` announces the end.

    Level changes and the all-clear still go out. A closed alert changes nothing.
    """
    now = _aware(now, "now")
    by = _actor(by)
    if not isinstance(duration, timedelta) or not timedelta(0) < duration <= MAX_SNOOZE:
        raise ValueError(f"snooze duration must be positive and at most {_fmt_duration(MAX_SNOOZE)}")
    a = state.alert
    if not a.open:
        return state, []
    until = now + duration
    snoozed = _with_alert(state, replace(a, snoozed_until=until, snoozed_by=by))
    note = (f"Snoozed by {_who(by)} for {_fmt_duration(duration)}, until {_fmt_time(until)}; "
            "a reminder follows when the snooze ends.")
    return _emit(snoozed, now, reason="snoozed", thread=("info", note))


def tick(
    state: S, now: datetime, policy: AlertPolicy, *, inhibited: bool = False
) -> tuple[S, list[Notification]]:
    """Time-driven work for one state: reposts, snooze end, reminders, flapping settling.

    The ``check_*`` functions call it themselves; call it directly between observations (e.g. when a
    balance read failed). ``inhibited`` (the API is down, for alerts that depend on it) holds
    everything back except the health state's own settling. At most one reminder per call, so a
    long gap between ticks never produces a burst.
    """
    now = _aware(now, "now")
    state, notes = state._on_tick(now, policy)
    a = state.alert
    if inhibited or not a.open:
        return state, notes
    if a.ts is None and (a.last_notified is None or now - a.last_notified >= policy.repost_after):
        state, more = _emit(state, now, reason="repost")
        return state, notes + more
    if a.snoozed_until is not None and now >= a.snoozed_until:
        state = _with_alert(state, replace(a, snoozed_until=None, snoozed_by=None))
        r = state.render(now)
        note = f"Snooze ended; still {state.state_label()}. {r.text}"
        state, more = _emit(state, now, reason="snooze_ended", thread=(r.severity, note))
        return state, notes + more
    if a.snoozed_until is not None or a.acked_by is not None or state.reminders_paused():
        return state, notes
    if a.last_notified is None or now - a.last_notified >= policy.repeat:
        r = state.render(now)
        since = f" for {_fmt_duration(now - a.opened_at)}" if a.opened_at else ""
        note = f"Reminder: still {state.state_label()}{since}. {r.text}"
        state, more = _emit(state, now, reason="reminder", update=False, thread=(r.severity, note))
        return state, notes + more
    return state, notes


# -- transitions shared by the policies ---------------------------------------------------------------


def _with_alert(state: S, alert: AlertState) -> S:
    return replace(state, alert=alert)


def _emit(
    state: S,
    now: datetime,
    *,
    reason: str,
    update: bool = True,
    thread: tuple[Severity, str] | None = None,
) -> tuple[S, list[Notification]]:
    """Notifications for the state as it now is: update and/or thread, or one post without a ts."""
    a = state.alert
    r = state.render(now)
    if a.ts is None:
        notes = [Notification("post", a.key, r.severity, r.title, r.text, dict(r.fields), reason)]
    else:
        notes = []
        if update:
            notes.append(Notification("update", a.key, r.severity, r.title, r.text, dict(r.fields), reason,
                                      a.channel, a.ts))
        if thread is not None:
            notes.append(Notification("thread", a.key, thread[0], r.title, thread[1], {}, reason,
                                      a.channel, a.ts))
    if any(n.kind != "update" for n in notes):
        state = _with_alert(state, replace(a, last_notified=now))
    return state, notes


def _fire(state: S, level: Level, now: datetime, *, value: str) -> tuple[S, list[Notification]]:
    """Open a new alert: a new message (the previous one, if any, stays resolved)."""
    a = state.alert
    alert = AlertState(key=a.key, open=True, level=level, opened_at=now, last_value=value,
                       fired_count=a.fired_count + 1)
    return _emit(_with_alert(state, alert), now, reason="fired")


def _change_level(
    state: S, level: Level, now: datetime, policy: AlertPolicy, *, note: str
) -> tuple[S, list[Notification]]:
    a = state.alert
    raised = _RANK[level] > _RANK[a.level]
    alert = replace(a, level=level)
    if raised and policy.escalation_rearms:
        alert = replace(alert, acked_by=None, acked_at=None, snoozed_until=None, snoozed_by=None)
    return _emit(_with_alert(state, alert), now, reason="escalated" if raised else "lowered",
                 thread=(level, note))


def _resolve(state: S, now: datetime, *, why: str, reason: str = "resolved") -> tuple[S, list[Notification]]:
    a = state.alert
    if not a.open:
        return state, []
    alert = replace(a, open=False, acked_by=None, acked_at=None, snoozed_until=None, snoozed_by=None,
                    resolved_at=now, resolved_reason=why)
    lasted = f" Open for {_fmt_duration(now - a.opened_at)}." if a.opened_at else ""
    return _emit(_with_alert(state, alert), now, reason=reason, thread=("ok", f"Resolved: {why}.{lasted}"))


def _handling_label(a: AlertState) -> str:
    if not a.open:
        return "resolved"
    if a.snoozed_until is not None:
        return "snoozed"
    if a.acked_by is not None:
        return "acked"
    return "firing"


def _handling_fields(a: AlertState, fields: dict[str, str]) -> None:
    if not a.open:
        if a.resolved_at:
            fields["Resolved at"] = _fmt_time(a.resolved_at)
        return
    if a.acked_by:
        fields["Acked by"] = _who(a.acked_by) + (f" at {_fmt_time(a.acked_at)}" if a.acked_at else "")
    if a.snoozed_until:
        fields["Snoozed until"] = _fmt_time(a.snoozed_until)
