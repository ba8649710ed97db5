"""The low-balance policy: per currency, two levels, hysteresis, the runway.

Fires after ``fire_after`` consecutive readings at or below a level, changes level with the same
evidence, clears only above the level plus a margin (see :func:`check_balance`). Pure: no I/O.
Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from gatebot.alerts.fields import Count, MoneyField, Name, Text, UtcTime
from gatebot.alerts.lifecycle import (
    AlertState,
    PolicyState,
    _change_level,
    _emit,
    _fire,
    _handling_fields,
    _resolve,
    _with_alert,
    tick,
)
from gatebot.alerts.policy import _LEVELS, _RANK, AlertPolicy, Level, Notification, Rendered, balance_key
from gatebot.alerts.text import _aware, _clip, _fmt_duration, _fmt_money, _fmt_time
from gatebot.money import Money, MoneyError

if TYPE_CHECKING:
    from gatebot.config import Thresholds

__all__ = ["BalanceReading", "BalanceState", "check_balance", "runway"]

_MAX_RUNWAY = timedelta(days=36500)


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
    currency: Name
    #: The levels (and the hysteresis margin amount) in force at the last reading, for rendering.
    warning: MoneyField | None = None
    critical: MoneyField | None = None
    margin: MoneyField | None = None
    balance: MoneyField | None = None
    spent_last_24h: MoneyField | None = None
    read_at: UtcTime | None = None
    #: Consecutive readings pointing to a more severe / less severe level than the current one.
    up_streak: Count = 0
    down_streak: Count = 0
    #: ``cause`` hints seen during the current good streak, reported by the all-clear.
    clear_cause: Text | None = None

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
    _check_currencies(cur, reading, thresholds)
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


def _check_currencies(cur: str, reading: BalanceReading, thresholds: Thresholds) -> None:
    for what, money in (("balance", reading.balance), ("spent_last_24h", reading.spent_last_24h),
                        ("warning level", thresholds.warning), ("critical level", thresholds.critical)):
        if money is not None and money.currency != cur:
            raise MoneyError(f"{what} is in {money.currency}, but this is the {cur} balance alert")


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
