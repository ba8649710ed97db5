"""Alert states in the store: one key-value row per alert, changed by atomic read-modify-write.

Rows are ``alert:<key>`` (``alert:balance:USD``, ``alert:health``, ``alert:job:track``) holding
:func:`~gatebot.alerts.codec.dump_state`'s JSON. Every change goes through :func:`repo.kv_update
<gatebot.store.repo.kv_update>` (row lock on PostgreSQL, compare-and-set everywhere), so the clock
process and a web process acking a button at the same moment never lose each other's change.
:func:`check_balance`, :func:`observe_health`, :func:`check_job`, :func:`tick`, :func:`ack_alert`,
:func:`snooze_alert` and :func:`record_message` are those atomic steps; each returns the
:class:`~gatebot.alerts.policy.Notification` list for the poster.

Every function takes the ``Session`` of the caller's unit of work (``await db.run(...)`` in async
code) and never commits; "now" is always an argument. :func:`gate_down` is the one answer to "is the
Gate down?" (the stored health state's circuit).

The only module of :mod:`gatebot.alerts` that touches the store (through its query functions, no SQL
here). Must not import Slack, the scheduler, ``gatebot.jobs`` or httpx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from gatebot.alerts.balance import BalanceReading, BalanceState
from gatebot.alerts.balance import check_balance as balance_policy
from gatebot.alerts.board import OpenAlert, inhibited
from gatebot.alerts.board import open_alerts as list_open
from gatebot.alerts.codec import dump_state, load_state
from gatebot.alerts.health import HealthObservation, HealthState, check_health, circuit_open
from gatebot.alerts.job import JobState, job_health
from gatebot.alerts.lifecycle import PolicyState, ack, snooze, with_message
from gatebot.alerts.lifecycle import tick as tick_state
from gatebot.alerts.policy import HEALTH_KEY, AlertPolicy, Notification, StateError, balance_key, job_key
from gatebot.config import Thresholds
from gatebot.store import repo
from gatebot.store.monitoring import kv_keys

__all__ = [
    "ALERT_PREFIX",
    "ack_alert",
    "alert_state",
    "all_states",
    "check_balance",
    "check_job",
    "gate_down",
    "health_state",
    "observe_health",
    "open_alerts",
    "record_message",
    "snooze_alert",
    "tick",
]

log = logging.getLogger(__name__)

#: Key-value prefix: one row per alert.
ALERT_PREFIX = "alert:"

Change = Callable[[PolicyState | None], tuple[PolicyState, list[Notification]]]


def _row(key: str) -> str:
    return ALERT_PREFIX + key


def _decode(key: str, raw: Any) -> PolicyState | None:
    if raw is None:
        return None
    try:
        state = load_state(raw)
    except StateError as exc:
        log.warning("alert state %s is unreadable (%s); starting it afresh", key, exc)
        return None
    if state.key != key:
        log.warning("alert state stored under %s is for %s; starting it afresh", key, state.key)
        return None
    return state


def alert_state(s: Session, key: str) -> PolicyState | None:
    """The stored state of ``key`` (``None``: none yet, or unreadable — warned)."""
    return _decode(key, repo.kv_get(s, _row(key)))


def all_states(s: Session) -> list[PolicyState]:
    """Every readable stored alert state, by key."""
    states = (alert_state(s, key[len(ALERT_PREFIX):]) for key in kv_keys(s, ALERT_PREFIX))
    return [state for state in states if state is not None]


def health_state(s: Session) -> HealthState:
    state = alert_state(s, HEALTH_KEY)
    return state if isinstance(state, HealthState) else HealthState.new()


def gate_down(s: Session) -> bool:
    """Whether the Gate API counts as down (its circuit is open): new orders are refused up front,
    jobs that need the API pause, balance alerts are held back."""
    return circuit_open(health_state(s))


def open_alerts(s: Session, now: datetime) -> list[OpenAlert]:
    """The open alerts for App Home and ``/gate health``, most severe first."""
    return list_open(all_states(s), now=now)


def _update(s: Session, key: str, now: datetime, change: Change) -> list[Notification]:
    """Apply ``change`` to the stored state of ``key`` atomically; returns its notifications.

    ``kv_update`` may call the change more than once (it lost a race and re-read): the policies are
    pure, so only the notifications of the call whose result was stored are returned.
    """
    produced: list[list[Notification]] = [[]]

    def apply(raw: Any) -> Any:
        state, notes = change(_decode(key, raw))
        if state.key != key:
            raise ValueError(f"a change of {key!r} returned the state of {state.key!r}")
        produced[0] = notes
        return dump_state(state)

    repo.kv_update(s, _row(key), apply, now)
    return produced[0]


def check_balance(
    s: Session, reading: BalanceReading, now: datetime, policy: AlertPolicy, *, thresholds: Thresholds
) -> list[Notification]:
    """Feed one balance reading to its currency's low-balance alert (held back while the API is down)."""
    currency = reading.balance.currency
    api_down = gate_down(s)

    def change(state: PolicyState | None) -> tuple[PolicyState, list[Notification]]:
        current = state if isinstance(state, BalanceState) else BalanceState.new(currency)
        return balance_policy(current, reading, now, policy, thresholds=thresholds, api_down=api_down)

    return _update(s, balance_key(currency), now, change)


def observe_health(
    s: Session, observations: Sequence[HealthObservation], now: datetime, policy: AlertPolicy
) -> list[Notification]:
    """Feed probe and real-call outcomes, in order, to the health policy (one atomic update)."""
    if not observations:
        return []

    def change(state: PolicyState | None) -> tuple[PolicyState, list[Notification]]:
        current = state if isinstance(state, HealthState) else HealthState.new()
        notes: list[Notification] = []
        for observation in observations:
            current, more = check_health(current, observation, now, policy)
            notes += more
        return current, notes

    return _update(s, HEALTH_KEY, now, change)


def check_job(
    s: Session,
    name: str,
    last_success: datetime | None,
    interval: timedelta,
    now: datetime,
    policy: AlertPolicy,
    *,
    needs_api: bool = False,
) -> list[Notification]:
    """Self-watch of one job (see :func:`gatebot.alerts.job.job_health` for what ``last_success`` means)."""
    api_down = needs_api and gate_down(s)

    def change(state: PolicyState | None) -> tuple[PolicyState, list[Notification]]:
        current = state if isinstance(state, JobState) else JobState.new(name)
        current = replace(current, needs_api=needs_api)
        return job_health(current, last_success, interval, now, policy, api_down=api_down)

    return _update(s, job_key(name), now, change)


def tick(s: Session, now: datetime, policy: AlertPolicy) -> list[Notification]:
    """Time-driven work for every alert: reminders, snooze ends, reposts, flapping settling.

    Health first (it decides the inhibition of the others), each key in its own atomic update.
    """
    notes: list[Notification] = []
    keys = [key[len(ALERT_PREFIX):] for key in kv_keys(s, ALERT_PREFIX)]
    keys.sort(key=lambda k: (k != HEALTH_KEY, k))
    for key in keys:
        stored = alert_state(s, key)
        if stored is None:  # unreadable (already warned): nothing to tick
            continue
        api_down = gate_down(s)

        def change(state: PolicyState | None, stored: PolicyState = stored,
                   api_down: bool = api_down) -> tuple[PolicyState, list[Notification]]:
            current = state or stored
            return tick_state(current, now, policy, inhibited=inhibited(current, api_down=api_down))

        notes += _update(s, key, now, change)
    return notes


def ack_alert(s: Session, key: str, *, by: str, now: datetime) -> list[Notification]:
    """Acknowledge ``key`` as ``by`` (a Slack user id) and record it in the audit log.

    A resolved or unknown alert (a stale button) changes nothing and returns no notifications.
    """
    state = alert_state(s, key)
    notes: list[Notification] = []
    if state is not None:
        notes = _update(s, key, now, lambda st: ack(st or state, by=by, now=now))
    detail = "acknowledged" if notes else ("not open" if state is not None else "no such alert")
    repo.audit(s, actor=by, action="alert.ack", target=key[:128], allowed=True, detail=detail, now=now)
    return notes


def snooze_alert(s: Session, key: str, *, by: str, duration: timedelta, now: datetime) -> list[Notification]:
    """Snooze ``key`` for ``duration`` as ``by`` and record it in the audit log (see :func:`ack_alert`)."""
    state = alert_state(s, key)
    notes: list[Notification] = []
    if state is not None:
        notes = _update(s, key, now, lambda st: snooze(st or state, by=by, duration=duration, now=now))
    hours = duration / timedelta(hours=1)
    detail = f"snoozed for {hours:g} h" if notes else ("not open" if state is not None else "no such alert")
    repo.audit(s, actor=by, action="alert.snooze", target=key[:128], allowed=True, detail=detail, now=now)
    return notes


def record_message(s: Session, key: str, channel: str, ts: str, now: datetime) -> None:
    """Remember the Slack message the poster created for ``key``'s ``post``."""
    stored = alert_state(s, key)
    if stored is None:
        log.warning("posted a message for alert %s, which has no stored state", key)
        return
    _update(s, key, now, lambda st: (with_message(st or stored, channel, ts), []))
