"""Alert policies: pure functions ``(state, observation, now, policy) -> (new state, notifications)``.

What lives here
    The rules behind gatebot's alerts, one module per concern:

    * :mod:`.policy` — the knobs (:class:`AlertPolicy`), :class:`Notification`, the alert keys;
    * :mod:`.lifecycle` — what every alert shares: ack, snooze, reminders, reposts, its message;
    * :mod:`.balance` — low balance (per currency, two levels, hysteresis, runway);
    * :mod:`.health` — Gate API health (debounce, probe back-off, the circuit, flapping);
    * :mod:`.job` — the jobs' self-watch;
    * :mod:`.board` — the open alerts, and the one inhibition rule (:func:`inhibited`);
    * :mod:`.codec` / :mod:`.fields` — the stored JSON, through pydantic;
    * :mod:`.stored` — the states in the store (one row per key, atomic read-modify-write).

The bar is Alertmanager / PagerDuty: one Slack message per problem (``post``), kept current by editing
it in place (``update``), with replies in its thread for what people should notice (``thread``), no
message per flap, and a clear all-clear that says why.

Every function here is pure: it takes a frozen state and returns a new state plus a list of
:class:`Notification` for the poster. No I/O, no clock reads (``now`` is an argument, timezone-aware
UTC), no logging. States round-trip through :func:`dump_state` / :func:`load_state` (str/int/bool/None,
ISO datetimes, Money as ``{"amount": "12.50", "currency": "USD"}``), so an open alert survives a restart
without a second post. After a successful ``post`` the poster stores the message with
:func:`with_message`; ``update`` and ``thread`` notifications carry that ``channel``/``ts``.

Notifications each policy can emit (``reason`` → kinds)::

    policy         reason         kinds              when
    -------------  -------------  -----------------  -------------------------------------------------
    balance        fired          post               fire_after consecutive readings at/below a level
    balance        value          update             the balance changed while the alert is open
    balance        escalated      update + thread    warning -> critical (fire_after readings)
    balance        lowered        update + thread    critical -> warning (clear_after readings above
                                                     critical + margin)
    balance        resolved       update + thread    clear_after readings above warning + margin;
                                                     says why (the reading's ``cause`` hint, if any)
    health         fired          post               health_fail_after consecutive failed probes (or
                                                     real calls): the API is down, the circuit opens
    health         resolved       update + thread    the probe answers again, with the outage duration
    health         flapping       update + thread    flap_changes up/down changes within flap_window:
                                                     (re)opens the SAME message, then stays quiet
    health         settled        update + thread    flap_quiet without a change: resolved, or plain
                                                     "down" again
    job            fired          post               no success for job_missed_intervals intervals
    job            resolved       update + thread    the job succeeded again
    any            reminder       thread             every ``repeat`` while open, unless acked, snoozed
                                                     or flapping
    any            acked          update + thread    :func:`ack`
    any            snoozed        update + thread    :func:`snooze`
    any            snooze_ended   update + thread    the snooze expired (found by :func:`tick`)
    any            repost         post               open alert whose message ts was never stored

Whenever an ``update`` or ``thread`` is due but the alert has no message ts (the poster failed), one
``post`` of the current state is emitted instead. ``post`` and ``thread`` restart the reminder clock;
``update`` (a silent edit) does not.

Inhibition (:func:`inhibited`): while the Gate API is down (:func:`circuit_open`) balance alerts — and
job alerts of jobs that need the API — neither fire, clear nor remind.

The policy modules must not import Slack, the scheduler, the store, httpx or anything that does I/O;
only :mod:`.stored` touches the store (through its query functions).
"""

from gatebot.alerts.balance import BalanceReading, BalanceState, check_balance, runway
from gatebot.alerts.board import OpenAlert, inhibited, open_alerts
from gatebot.alerts.codec import dump_state, load_state
from gatebot.alerts.health import HealthObservation, HealthState, check_health, circuit_open, probe_due
from gatebot.alerts.job import JobState, job_health
from gatebot.alerts.lifecycle import AlertState, PolicyState, ack, snooze, tick, with_message
from gatebot.alerts.policy import (
    HEALTH_KEY,
    MAX_SNOOZE,
    SNOOZE_CHOICES,
    AlertPolicy,
    Kind,
    Level,
    Notification,
    Rendered,
    Severity,
    StateError,
    balance_key,
    job_key,
)

__all__ = [
    "HEALTH_KEY",
    "MAX_SNOOZE",
    "SNOOZE_CHOICES",
    "AlertPolicy",
    "AlertState",
    "BalanceReading",
    "BalanceState",
    "HealthObservation",
    "HealthState",
    "JobState",
    "Kind",
    "Level",
    "Notification",
    "OpenAlert",
    "PolicyState",
    "Rendered",
    "Severity",
    "StateError",
    "ack",
    "balance_key",
    "check_balance",
    "check_health",
    "circuit_open",
    "dump_state",
    "inhibited",
    "job_health",
    "job_key",
    "load_state",
    "open_alerts",
    "probe_due",
    "runway",
    "snooze",
    "tick",
    "with_message",
]
