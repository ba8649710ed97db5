"""Alert policies: pure functions ``(state, observation, now, policy) -> (new state, notifications)``.

What lives here
    The rules behind gatebot's alerts — low balance (per currency, two levels, hysteresis, runway),
    Gate API health (debounce, exponential probe back-off, circuit breaker, flapping) and the jobs'
    self-watch — plus the life cycle every alert shares (ack, snooze, reminders, message bookkeeping)
    and :class:`AlertBook`, the dict of named states (``balance:USD``, ``health``, ``job:track``) that
    the jobs layer loads, feeds and saves.

The bar is Alertmanager / PagerDuty: one Slack message per problem (``post``), kept current by editing
it in place (``update``), with replies in its thread for what people should notice (``thread``), no
message per flap, and a clear all-clear that says why.

Every function here is pure: it takes a frozen state and returns a new state plus a list of
:class:`Notification` for the poster. No I/O, no clock reads (``now`` is an argument, timezone-aware
UTC), no logging. States round-trip through ``to_json()`` / ``from_json()`` (str/int/bool/None, ISO
datetimes, Money as ``{"amount": "12.50", "currency": "USD"}``), so an open alert survives a restart
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

Inhibition: while the Gate API is down (:func:`circuit_open`) balance alerts — and job alerts of jobs
that need the API — neither fire, clear nor remind.

Must not import Slack, the scheduler, the store, httpx or anything that does I/O; only
:mod:`gatebot.money` (and :mod:`gatebot.config` for type hints).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeVar

from gatebot.money import Money, MoneyError

if TYPE_CHECKING:
    from gatebot.config import Settings, Thresholds

__all__ = [
    "HEALTH_KEY",
    "MAX_SNOOZE",
    "SNOOZE_CHOICES",
    "AlertBook",
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

Kind = Literal["post", "update", "thread"]
Severity = Literal["warning", "critical", "info", "ok"]
Level = Literal["warning", "critical"]

HEALTH_KEY = "health"
#: Snooze lengths the Slack UI offers.
SNOOZE_CHOICES: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
#: Longest snooze accepted: an alert must not disappear for good by accident.
MAX_SNOOZE = timedelta(days=7)

_STATE_VERSION = 1
_MAX_RUNWAY = timedelta(days=36500)
_MAX_NOTE = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RANK: dict[str | None, int] = {None: 0, "warning": 1, "critical": 2}
_LEVELS: dict[int, Level] = {1: "warning", 2: "critical"}
_SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2, "ok": 3}
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


class StateError(ValueError):
    """A stored alert state that cannot be read back (not an object, wrong type, bad value)."""


def balance_key(currency: str) -> str:
    """The book key of the low-balance alert of ``currency``: ``balance:USD``."""
    return f"balance:{currency.strip().upper()}"


def job_key(job: str) -> str:
    """The book key of a job's self-watch alert: ``job:track``."""
    return f"job:{job}"


# -- policy knobs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPolicy:
    """Every knob of every policy. The defaults match :class:`~gatebot.config.Settings`' defaults."""

    #: Consecutive low readings before a balance alert fires; also needed to raise its level.
    fire_after: int = 3
    #: Consecutive good readings before a balance alert clears; also needed to lower its level.
    clear_after: int = 2
    #: Hysteresis, as a fraction of the warning level: a level is left only above ``level + margin``.
    clear_margin: Decimal = Decimal("0.10")
    #: Reminder interval while an alert stays open (not acked, not snoozed, not flapping).
    repeat: timedelta = timedelta(hours=4)
    #: Whether an escalation to a more severe level drops the ack and snooze (so reminders resume).
    #: Off by default: an ack holds until the all-clear, the escalation itself is announced.
    escalation_rearms: bool = False
    #: Consecutive failed probes, or consecutive failed real calls (counted apart), before the API
    #: counts as down (alert + open circuit).
    health_fail_after: int = 3
    #: Consecutive successes before a down API counts as up again.
    health_recover_after: int = 1
    #: The health job's interval: the base of the back-off while the API is down.
    probe_interval: timedelta = timedelta(minutes=1)
    #: Longest wait between probes while the API is down.
    probe_backoff_cap: timedelta = timedelta(minutes=15)
    #: Flapping: at least ``flap_changes`` up/down changes within ``flap_window`` ...
    flap_window: timedelta = timedelta(minutes=30)
    flap_changes: int = 3
    #: ... and it settles after ``flap_quiet`` without a change.
    flap_quiet: timedelta = timedelta(minutes=30)
    #: A job alert fires when the job has not succeeded for this many intervals.
    job_missed_intervals: int = 3
    #: An open alert whose post was never stored (poster failed) is posted again after this long.
    repost_after: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        for name in ("fire_after", "clear_after", "health_fail_after", "health_recover_after",
                     "flap_changes", "job_missed_intervals"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AlertPolicy.{name} must be a positive int, got {value!r}")
        if self.flap_changes < 2:
            raise ValueError("AlertPolicy.flap_changes must be at least 2")
        if not isinstance(self.clear_margin, Decimal) or not Decimal(0) <= self.clear_margin <= Decimal(1):
            raise ValueError(f"AlertPolicy.clear_margin must be a Decimal in [0, 1], "
                             f"got {self.clear_margin!r}")
        for name in ("repeat", "probe_interval", "probe_backoff_cap", "flap_window", "flap_quiet",
                     "repost_after"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValueError(f"AlertPolicy.{name} must be a positive timedelta, got {value!r}")
        if self.probe_backoff_cap < self.probe_interval:
            raise ValueError("AlertPolicy.probe_backoff_cap must not be shorter than probe_interval")

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertPolicy:
        """The policy configured by ``GATEBOT_ALERT_*`` / ``GATEBOT_HEALTH_*``; other knobs default."""
        return cls(
            fire_after=settings.gatebot_alert_fire_after,
            clear_after=settings.gatebot_alert_clear_after,
            clear_margin=settings.gatebot_alert_clear_margin,
            repeat=timedelta(seconds=settings.gatebot_alert_repeat),
            health_fail_after=settings.gatebot_health_fail_after,
            probe_interval=timedelta(seconds=settings.gatebot_health_interval),
            probe_backoff_cap=max(timedelta(minutes=15), timedelta(seconds=settings.gatebot_health_interval)),
        )


# -- notifications ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing for the poster to do in Slack.

    ``post``: the first message of the alert (store its ts with :func:`with_message`); ``update``: edit
    that message in place; ``thread``: reply in its thread. ``channel``/``ts`` name the message for
    ``update`` and ``thread`` (``None`` for ``post``). ``reason`` is machine-readable (see the module
    table); ``fields`` are label → value pairs for the message body (empty for thread replies).
    """

    kind: Kind
    alert_key: str
    severity: Severity
    title: str
    text: str
    fields: dict[str, str]
    reason: str
    channel: str | None = None
    ts: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """The current content of an alert's message."""

    severity: Severity
    title: str
    text: str
    fields: dict[str, str]


# -- the alert life cycle shared by all policies ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertState:
    """The life cycle of one alert: open or not, level, who acked, snooze, its Slack message.

    ``channel``/``ts`` survive the all-clear (the resolved message may still be edited, and a health
    alert that starts flapping reuses it); a new firing starts a new message.
    """

    key: str
    open: bool = False
    level: Level | None = None
    opened_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None
    #: When a post or thread reply last went out (the reminder clock).
    last_notified: datetime | None = None
    channel: str | None = None
    ts: str | None = None
    #: The value the message shows (e.g. ``USD 420.00``), to edit it only when it changes.
    last_value: str | None = None
    #: How many times this alert has fired (a flapping reopen counts).
    fired_count: int = 0
    resolved_at: datetime | None = None
    resolved_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "open": self.open,
            "level": self.level,
            "opened_at": _dt_out(self.opened_at),
            "acked_by": self.acked_by,
            "acked_at": _dt_out(self.acked_at),
            "snoozed_until": _dt_out(self.snoozed_until),
            "snoozed_by": self.snoozed_by,
            "last_notified": _dt_out(self.last_notified),
            "channel": self.channel,
            "ts": self.ts,
            "last_value": self.last_value,
            "fired_count": self.fired_count,
            "resolved_at": _dt_out(self.resolved_at),
            "resolved_reason": self.resolved_reason,
        }

    @classmethod
    def from_json(cls, data: Any) -> AlertState:
        r = _Reader(data, "alert")
        return cls(
            key=r.required_text("key"),
            open=r.flag("open"),
            level=r.level("level"),
            opened_at=r.when("opened_at"),
            acked_by=r.text("acked_by"),
            acked_at=r.when("acked_at"),
            snoozed_until=r.when("snoozed_until"),
            snoozed_by=r.text("snoozed_by"),
            last_notified=r.when("last_notified"),
            channel=r.text("channel"),
            ts=r.text("ts"),
            last_value=r.text("last_value"),
            fired_count=r.integer("fired_count"),
            resolved_at=r.when("resolved_at"),
            resolved_reason=r.text("resolved_reason"),
        )


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

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with ``type`` and ``v`` so :func:`load_state` can read it back."""

    @classmethod
    @abstractmethod
    def from_json(cls, data: Any) -> Self:
        """Read back :meth:`to_json`'s output; raises :class:`StateError` on anything else."""


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


# -- low balance -------------------------------------------------------------------------------------


def runway(balance: Money, spent_last_24h: Money, now: datetime) -> datetime | None:
    """When ``balance`` runs out if spending goes on at the last 24 hours' pace.

    ``None`` when nothing was spent (or the runway is longer than a century); ``now`` when the balance
    is already exhausted. Refuses mixed currencies.
    """
    now = _aware(now, "now")
    if spent_last_24h.currency != balance.currency:
        raise MoneyError(f"cannot combine {balance.currency} with {spent_last_24h.currency}")
    if spent_last_24h.amount <= 0:
        return None
    if balance.amount <= 0:
        return now
    seconds = balance.amount / spent_last_24h.amount * 86400
    if seconds > _MAX_RUNWAY.days * 86400:
        return None
    return now + timedelta(seconds=int(seconds))


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceReading:
    """One balance check: the balance, the last 24 hours' spending (for the runway) and an optional
    ``cause`` hint for an all-clear (``"deposit #12 of USD 500.00 posted"``)."""

    balance: Money
    spent_last_24h: Money | None = None
    cause: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceState(PolicyState):
    """Low-balance alert of one currency: the alert plus streak counters and the last reading."""

    TYPE: ClassVar[str] = "balance"
    currency: str
    #: The levels (and the hysteresis margin amount) in force at the last reading, for rendering.
    warning: Money | None = None
    critical: Money | None = None
    margin: Money | None = None
    balance: Money | None = None
    spent_last_24h: Money | None = None
    read_at: datetime | None = None
    #: Consecutive readings pointing to a more severe / less severe level than the current one.
    up_streak: int = 0
    down_streak: int = 0
    #: ``cause`` hints seen during the current good streak, reported by the all-clear.
    clear_cause: str | None = None

    @classmethod
    def new(cls, currency: str) -> BalanceState:
        code = currency.strip().upper()
        return cls(alert=AlertState(key=balance_key(code)), currency=code)

    def _clear_above(self, level: int) -> Money | None:
        base = self.critical if level == 2 else self.warning
        if base is None or self.margin is None:
            return None
        return base + self.margin

    def render(self, now: datetime) -> Rendered:
        a = self.alert
        cur = self.currency
        value = _fmt_money(self.balance)
        fields: dict[str, str] = {"State": self.state_label(), "Balance": value}
        if a.open and a.level:
            fields["Level"] = a.level
        if self.warning is not None:
            fields["Warning at"] = self.warning.format()
        if self.critical is not None:
            fields["Critical at"] = self.critical.format()
        clear_above = self._clear_above(_RANK[a.level] if a.open else 1)
        if a.open and clear_above is not None:
            fields["Clears above"] = clear_above.format()
        run = self._runway_text()
        if run:
            fields["Runway"] = run
        if a.open and a.opened_at:
            fields["Open since"] = _fmt_time(a.opened_at)
        _handling_fields(a, fields)
        if not a.open:
            why = a.resolved_reason or f"the {cur} balance is {value}"
            return Rendered("ok", f"{cur} balance back to normal", f"Resolved: {why}.", fields)
        level: Level = a.level or "warning"
        limit = self.critical if level == "critical" else self.warning
        title = f"{cur} balance {'critically low' if level == 'critical' else 'low'}"
        if self.balance is None or limit is None or self.balance <= limit:
            text = f"The {cur} balance is {value}, at or below the {level} level {_fmt_money(limit)}."
        elif clear_above is None or self.balance <= clear_above:
            text = (f"The {cur} balance is {value}: back above the {level} level {limit.format()}, "
                    f"but the alert stays until it is above {_fmt_money(clear_above)}.")
        else:
            warning_line = self._clear_above(1)
            outcome = "clears" if level == "warning" or (
                warning_line is not None and self.balance > warning_line) else "drops to warning"
            text = (f"The {cur} balance is {value}, above {clear_above.format()}: the alert {outcome} "
                    "if it stays there.")
        if run:
            text += f" Runway: {run}."
        return Rendered(level, title, text, fields)

    def _runway_text(self) -> str:
        if self.balance is None or self.spent_last_24h is None or self.read_at is None:
            return ""
        when = runway(self.balance, self.spent_last_24h, self.read_at)
        if when is None:
            return "no spending in the last 24 h"
        if when <= self.read_at:
            return "exhausted"
        return (f"runs out around {_fmt_time(when)} (in {_fmt_duration(when - self.read_at)}) at the "
                f"last 24 h of spending ({self.spent_last_24h.format()})")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "v": _STATE_VERSION,
            "alert": self.alert.to_json(),
            "currency": self.currency,
            "warning": _money_out(self.warning),
            "critical": _money_out(self.critical),
            "margin": _money_out(self.margin),
            "balance": _money_out(self.balance),
            "spent_last_24h": _money_out(self.spent_last_24h),
            "read_at": _dt_out(self.read_at),
            "up_streak": self.up_streak,
            "down_streak": self.down_streak,
            "clear_cause": self.clear_cause,
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        r = _Reader(data, cls.TYPE).typed(cls.TYPE)
        return cls(
            alert=AlertState.from_json(r.child("alert")),
            currency=r.required_text("currency"),
            warning=r.money("warning"),
            critical=r.money("critical"),
            margin=r.money("margin"),
            balance=r.money("balance"),
            spent_last_24h=r.money("spent_last_24h"),
            read_at=r.when("read_at"),
            up_streak=r.integer("up_streak"),
            down_streak=r.integer("down_streak"),
            clear_cause=r.text("clear_cause"),
        )


def check_balance(
    state: BalanceState,
    reading: BalanceReading,
    now: datetime,
    policy: AlertPolicy,
    *,
    thresholds: Thresholds,
    api_down: bool = False,
) -> tuple[BalanceState, list[Notification]]:
    """Feed one balance reading to the low-balance policy of its currency.

    Fires after ``fire_after`` consecutive readings at or below the warning (or critical) level;
    changes level with the same evidence (``fire_after`` up, ``clear_after`` down); clears only after
    ``clear_after`` consecutive readings above ``warning + clear_margin * warning`` — a reading between
    the level and level + margin keeps the alert as it is and breaks a clearing streak. While open,
    the message is edited whenever the balance changes. With ``api_down`` (see :func:`circuit_open`)
    the reading is ignored altogether: no fire, no clear, no reminder.
    """
    now = _aware(now, "now")
    if api_down:
        return state, []
    cur = state.currency
    for what, money in (("balance", reading.balance), ("spent_last_24h", reading.spent_last_24h),
                        ("warning level", thresholds.warning), ("critical level", thresholds.critical)):
        if money is not None and money.currency != cur:
            raise MoneyError(f"{what} is in {money.currency}, but this is the {cur} balance alert")
    margin = Money.rounded(thresholds.warning.amount * policy.clear_margin, cur)
    a = state.alert
    current = _RANK[a.level] if a.open else 0
    target = _balance_target(reading.balance, thresholds, margin, current)
    up = state.up_streak + 1 if target > current else 0
    down = state.down_streak + 1 if target < current else 0
    cause = _join_causes(state.clear_cause, reading.cause) if target < current else None
    value = reading.balance.format()
    s = replace(state, warning=thresholds.warning, critical=thresholds.critical, margin=margin,
                balance=reading.balance, spent_last_24h=reading.spent_last_24h, read_at=now,
                up_streak=up, down_streak=down, clear_cause=cause)
    notes: list[Notification] = []
    if target > current and up >= policy.fire_after:
        level = _LEVELS[target]
        s = replace(s, up_streak=0)
        if current == 0:
            s, notes = _fire(s, level, now, value=value)
        else:
            limit = thresholds.critical if level == "critical" else thresholds.warning
            s = _with_alert(s, replace(s.alert, last_value=value))
            note = (f"Escalated to {level}: the {cur} balance {value} is at or below the {level} "
                    f"level {limit}.")
            s, notes = _change_level(s, level, now, policy, note=note)
    elif target < current and down >= policy.clear_after:
        above = (thresholds.warning if target == 0 else thresholds.critical) + margin
        basis = f"the {cur} balance is {value}, above {above} for {down} checks"
        why = f"{cause}; {basis}" if cause else basis
        s = _with_alert(replace(s, down_streak=0, clear_cause=None), replace(s.alert, last_value=value))
        if target == 0:
            s, notes = _resolve(s, now, why=why)
        else:
            lower = _LEVELS[target]
            s, notes = _change_level(s, lower, now, policy, note=f"Lowered to {lower}: {why}.")
    elif a.open and value != a.last_value:
        s = _with_alert(s, replace(s.alert, last_value=value))
        s, notes = _emit(s, now, reason="value")
    s, more = tick(s, now, policy)
    return s, notes + more


def _balance_target(balance: Money, t: Thresholds, margin: Money, current: int) -> int:
    """The level (0 ok, 1 warning, 2 critical) this reading argues for, with hysteresis downwards."""
    raw = 2 if balance <= t.critical else 1 if balance <= t.warning else 0
    if raw >= current:
        return raw
    if current == 2 and balance <= t.critical + margin:
        return 2
    return 0 if balance > t.warning + margin else 1


def _join_causes(old: str | None, new: str | None) -> str | None:
    if not new:
        return old
    new = _clip(new)
    if not old:
        return new
    if new in old.split("; "):
        return old
    return _clip(f"{old}; {new}")


# -- API health ----------------------------------------------------------------------------------------


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
    down: bool = False
    #: Consecutive failed ``/health`` probes (reset only by a probe that answers) and consecutive
    #: answering probes while down: the probe is its own signal, whatever real calls do meanwhile.
    failures: int = 0
    successes: int = 0
    failing_since: datetime | None = None
    #: Consecutive failed real calls (reset by a real call that works, or when the API recovers): the
    #: second signal that may also open the circuit. It never closes it: recovery needs the probe.
    call_failures: int = 0
    call_failing_since: datetime | None = None
    down_since: datetime | None = None
    #: The health job skips probes until then (``None``: probe on the normal schedule).
    next_probe_at: datetime | None = None
    backoff_s: int = 0
    #: Times of up/down changes inside the flap window.
    changes: tuple[datetime, ...] = ()
    last_change_at: datetime | None = None
    flapping: bool = False
    flapping_since: datetime | None = None
    last_error: str | None = None

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

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "v": _STATE_VERSION,
            "alert": self.alert.to_json(),
            "down": self.down,
            "failures": self.failures,
            "successes": self.successes,
            "failing_since": _dt_out(self.failing_since),
            "call_failures": self.call_failures,
            "call_failing_since": _dt_out(self.call_failing_since),
            "down_since": _dt_out(self.down_since),
            "next_probe_at": _dt_out(self.next_probe_at),
            "backoff_s": self.backoff_s,
            "changes": [_dt_out(t) for t in self.changes],
            "last_change_at": _dt_out(self.last_change_at),
            "flapping": self.flapping,
            "flapping_since": _dt_out(self.flapping_since),
            "last_error": self.last_error,
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        r = _Reader(data, cls.TYPE).typed(cls.TYPE)
        return cls(
            alert=AlertState.from_json(r.child("alert")),
            down=r.flag("down"),
            failures=r.integer("failures"),
            successes=r.integer("successes"),
            failing_since=r.when("failing_since"),
            call_failures=r.integer("call_failures"),
            call_failing_since=r.when("call_failing_since"),
            down_since=r.when("down_since"),
            next_probe_at=r.when("next_probe_at"),
            backoff_s=r.integer("backoff_s"),
            changes=r.whens("changes"),
            last_change_at=r.when("last_change_at"),
            flapping=r.flag("flapping"),
            flapping_since=r.when("flapping_since"),
            last_error=r.text("last_error"),
        )


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
    s = state
    changed: Literal["up", "down"] | None = None
    detail = None if observation.ok else \
        _clip(observation.detail) if observation.detail else f"{observation.source} failed"
    if observation.source == "call":
        if observation.ok:
            s = replace(s, call_failures=0, call_failing_since=None)
        else:
            s = replace(s, call_failures=s.call_failures + 1, call_failing_since=s.call_failing_since or now,
                        last_error=detail)
    elif observation.ok:
        s = replace(s, failures=0, successes=s.successes + 1, failing_since=None, next_probe_at=None,
                    backoff_s=0)
        if s.down and s.successes >= policy.health_recover_after:
            changed = "up"
            s = replace(s, down=False, call_failures=0, call_failing_since=None, changes=(*s.changes, now),
                        last_change_at=now)
    else:
        s = replace(s, failures=s.failures + 1, successes=0, failing_since=s.failing_since or now,
                    last_error=detail)
        if s.down:
            previous = timedelta(seconds=s.backoff_s) if s.backoff_s > 0 else policy.probe_interval
            delay = min(previous * 2, policy.probe_backoff_cap)
            s = replace(s, backoff_s=_seconds(delay), next_probe_at=now + delay)
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


# -- job self-watch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobState(PolicyState):
    """Self-watch of one scheduled job: alert when it has not succeeded for a few intervals."""

    TYPE: ClassVar[str] = "job"
    job: str
    interval_s: int = 0
    last_success: datetime | None = None
    #: When watching started: the reference for a job that never succeeded.
    watch_since: datetime | None = None
    #: Whether the job needs the Gate API (then its alert is held back while the API is down).
    needs_api: bool = False

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

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "v": _STATE_VERSION,
            "alert": self.alert.to_json(),
            "job": self.job,
            "interval_s": self.interval_s,
            "last_success": _dt_out(self.last_success),
            "watch_since": _dt_out(self.watch_since),
            "needs_api": self.needs_api,
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        r = _Reader(data, cls.TYPE).typed(cls.TYPE)
        return cls(
            alert=AlertState.from_json(r.child("alert")),
            job=r.required_text("job"),
            interval_s=r.integer("interval_s"),
            last_success=r.when("last_success"),
            watch_since=r.when("watch_since"),
            needs_api=r.flag("needs_api"),
        )


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


# -- the book of named states ------------------------------------------------------------------------


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


_STATE_TYPES: dict[str, type[PolicyState]] = {
    BalanceState.TYPE: BalanceState,
    HealthState.TYPE: HealthState,
    JobState.TYPE: JobState,
}


def load_state(data: Any) -> PolicyState:
    """Read back any state's ``to_json()`` output, dispatching on its ``type``."""
    kind = data.get("type") if isinstance(data, Mapping) else None
    cls = _STATE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise StateError(f"unknown alert state type {kind!r}")
    return cls.from_json(data)


class AlertBook:
    """The named alert states of one gatebot (``balance:USD``, ``health``, ``job:track``).

    A small mutable container over the pure functions: each method runs the policy on the stored
    state, stores the result and returns the notifications. It wires the inhibition rule — balance
    alerts and API-dependent job alerts are held back while :meth:`circuit_open` — so the jobs layer
    cannot forget it. Save with :meth:`to_json` (one JSON-able dict per key) and restore with
    :meth:`from_json`.
    """

    def __init__(self, states: Iterable[PolicyState] = ()) -> None:
        self._states: dict[str, PolicyState] = {}
        for state in states:
            self.put(state)

    # -- access ------------------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        return key in self._states

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def values(self) -> list[PolicyState]:
        return list(self._states.values())

    def get(self, key: str) -> PolicyState | None:
        return self._states.get(key)

    def put(self, state: PolicyState) -> None:
        self._states[state.key] = state

    def balance(self, currency: str) -> BalanceState:
        """The state of ``currency``'s low-balance alert (a fresh one if there is none yet)."""
        state = self._states.get(balance_key(currency))
        return state if isinstance(state, BalanceState) else BalanceState.new(currency)

    def health(self) -> HealthState:
        state = self._states.get(HEALTH_KEY)
        return state if isinstance(state, HealthState) else HealthState.new()

    def job(self, name: str) -> JobState:
        state = self._states.get(job_key(name))
        return state if isinstance(state, JobState) else JobState.new(name)

    def circuit_open(self) -> bool:
        return circuit_open(self.health())

    # -- policies ----------------------------------------------------------------------------
    def check_balance(
        self, reading: BalanceReading, now: datetime, policy: AlertPolicy, *, thresholds: Thresholds
    ) -> list[Notification]:
        state, notes = check_balance(self.balance(reading.balance.currency), reading, now, policy,
                                     thresholds=thresholds, api_down=self.circuit_open())
        self.put(state)
        return notes

    def check_health(
        self, observation: HealthObservation, now: datetime, policy: AlertPolicy
    ) -> list[Notification]:
        state, notes = check_health(self.health(), observation, now, policy)
        self.put(state)
        return notes

    def job_health(
        self, name: str, last_success: datetime | None, interval: timedelta, now: datetime,
        policy: AlertPolicy, *, needs_api: bool = False,
    ) -> list[Notification]:
        state = replace(self.job(name), needs_api=needs_api)
        state, notes = job_health(state, last_success, interval, now, policy,
                                  api_down=needs_api and self.circuit_open())
        self.put(state)
        return notes

    def tick(self, now: datetime, policy: AlertPolicy) -> list[Notification]:
        """:func:`tick` every state, health first (it decides the inhibition of the others)."""
        notes: list[Notification] = []
        keys = sorted(self._states, key=lambda k: (k != HEALTH_KEY, k))
        for key in keys:
            state = self._states[key]
            inhibited = self.circuit_open() and (
                isinstance(state, BalanceState) or (isinstance(state, JobState) and state.needs_api))
            state, more = tick(state, now, policy, inhibited=inhibited)
            self.put(state)
            notes.extend(more)
        return notes

    # -- people and the poster -----------------------------------------------------------------
    def ack(self, key: str, *, by: str, now: datetime) -> list[Notification]:
        """Ack the alert ``key``; an unknown key (a stale button) changes nothing."""
        state = self._states.get(key)
        if state is None:
            return []
        state, notes = ack(state, by=by, now=now)
        self.put(state)
        return notes

    def snooze(self, key: str, *, by: str, duration: timedelta, now: datetime) -> list[Notification]:
        state = self._states.get(key)
        if state is None:
            return []
        state, notes = snooze(state, by=by, duration=duration, now=now)
        self.put(state)
        return notes

    def with_message(self, key: str, channel: str, ts: str) -> None:
        state = self._states.get(key)
        if state is None:
            raise KeyError(key)
        self.put(with_message(state, channel, ts))

    def open_alerts(self, *, now: datetime | None = None) -> list[OpenAlert]:
        return open_alerts(self._states, now=now)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, dict[str, Any]]:
        return {key: state.to_json() for key, state in self._states.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertBook:
        book = cls()
        for key, raw in data.items():
            state = load_state(raw)
            if state.key != key:
                raise StateError(f"state stored under {key!r} is for {state.key!r}")
            book.put(state)
        return book


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


# -- small helpers ------------------------------------------------------------------------------------


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _actor(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ValueError("who acted must be a non-empty Slack user id or name")
    return by.strip()


def _who(by: str) -> str:
    """A Slack mention for a user id, the text otherwise."""
    return f"<@{by}>" if _SLACK_USER.fullmatch(by) else by


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_NOTE else text[: _MAX_NOTE - 1] + "…"


def _seconds(delta: timedelta) -> int:
    return delta // timedelta(seconds=1)


def _fmt_money(money: Money | None) -> str:
    return money.format() if money is not None else "unknown"


def _fmt_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt_duration(delta: timedelta) -> str:
    """``45 s``, ``12 min``, ``5 h 20 min``, ``3 d 4 h`` (negative durations count as zero)."""
    secs = max(0, _seconds(delta))
    if secs < 60:
        return f"{secs} s"
    minutes = secs // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, mins = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    days, hrs = divmod(hours, 24)
    return f"{days} d {hrs} h" if hrs else f"{days} d"


def _dt_out(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None


def _money_out(money: Money | None) -> dict[str, str] | None:
    return {"amount": money.as_api(), "currency": money.currency} if money is not None else None


class _Reader:
    """Typed, forgiving-about-absence, strict-about-type access to a stored state dict."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise StateError(f"{what}: expected an object, got {type(data).__name__}")
        self._data: Mapping[str, Any] = data
        self._what = what

    def typed(self, kind: str) -> _Reader:
        if self._data.get("type", kind) != kind:
            raise StateError(f"{self._what}: stored type is {self._data.get('type')!r}")
        version = self._data.get("v", _STATE_VERSION)
        if version != _STATE_VERSION:
            raise StateError(f"{self._what}: unsupported state version {version!r}")
        return self

    def _bad(self, name: str, expected: str, value: Any) -> StateError:
        return StateError(f"{self._what}.{name}: expected {expected}, got {value!r}")

    def child(self, name: str) -> Any:
        value = self._data.get(name)
        if not isinstance(value, Mapping):
            raise self._bad(name, "an object", value)
        return value

    def text(self, name: str) -> str | None:
        value = self._data.get(name)
        if value is None or isinstance(value, str):
            return value
        raise self._bad(name, "a string", value)

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise self._bad(name, "a non-empty string", value)
        return value

    def integer(self, name: str) -> int:
        value = self._data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._bad(name, "a non-negative int", value)
        return value

    def flag(self, name: str) -> bool:
        value = self._data.get(name, False)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false", value)
        return value

    def level(self, name: str) -> Level | None:
        value = self._data.get(name)
        if value is None:
            return None
        if value == "warning":
            return "warning"
        if value == "critical":
            return "critical"
        raise self._bad(name, '"warning", "critical" or null', value)

    def when(self, name: str) -> datetime | None:
        return self._parse_when(name, self._data.get(name))

    def whens(self, name: str) -> tuple[datetime, ...]:
        value = self._data.get(name) or []
        if not isinstance(value, list):
            raise self._bad(name, "a list of ISO datetimes", value)
        out: list[datetime] = []
        for item in value:
            parsed = self._parse_when(name, item)
            if parsed is None:
                raise self._bad(name, "a list of ISO datetimes", value)
            out.append(parsed)
        return tuple(out)

    def _parse_when(self, name: str, value: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._bad(name, "an ISO datetime", value)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self._bad(name, "an ISO datetime", value) from None
        if parsed.tzinfo is None:
            raise self._bad(name, "a timezone-aware ISO datetime", value)
        return parsed.astimezone(UTC)

    def money(self, name: str) -> Money | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping) or not isinstance(value.get("amount"), str) \
                or not isinstance(value.get("currency"), str):
            raise self._bad(name, '{"amount": "12.50", "currency": "USD"}', value)
        try:
            return Money.parse(value["amount"], value["currency"])
        except MoneyError as exc:
            raise self._bad(name, f"money ({exc})", value) from None
