"""Small helpers the alert policies share: checking times and actors, and formatting for people.

Must not import anything beyond :mod:`gatebot.money` and the standard library.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gatebot.clock import format_utc
from gatebot.money import Money

_MAX_NOTE = 300
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")

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
    return format_utc(when)


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

