"""The low-balance level of one balance: ``ok`` / ``warning`` / ``critical`` (or ``unset``).

The one rule read by ``/gate balance``, the Home tab and ``gatebot balance``: a balance at or below a
level counts as that level. Display only: the low-balance alert (``gatebot.alerts.balance``) adds
hysteresis on top of it.

Must not import Slack, the scheduler or ``gatebot.jobs``.
"""

from __future__ import annotations

from typing import Literal

from gatebot.config import Thresholds
from gatebot.money import Money, MoneyError

__all__ = ["BalanceLevel", "balance_level"]

BalanceLevel = Literal["ok", "warning", "critical", "unset"]


def balance_level(available: Money, thresholds: Thresholds | None) -> BalanceLevel:
    """``ok`` / ``warning`` / ``critical`` against the thresholds (at or below a level counts), ``unset``
    without any, or when they are in another currency (nothing to compare)."""
    if thresholds is None:
        return "unset"
    try:
        if available <= thresholds.critical:
            return "critical"
        if available <= thresholds.warning:
            return "warning"
    except MoneyError:
        return "unset"
    return "ok"
