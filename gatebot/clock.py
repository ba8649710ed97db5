"""Time as a dependency: production uses :class:`SystemClock`, tests and the demo a :class:`ManualClock`.

Everything in the core that needs "now" takes a :class:`Clock`, so tests control time instead of
sleeping. Must not import Slack or the scheduler.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "Clock", "ManualClock", "OffsetClock", "SystemClock", "TimeArgumentError", "format_utc", "parse_when", "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class TimeArgumentError(ValueError):
    """A time typed by a person could not be read; the message names the option and the accepted forms."""


_AGE_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_when(text: str, *, now: datetime, option: str = "--since") -> datetime:
    """A time as people type it: a date (``2026-11-24``, midnight UTC), a time (``2026-11-24T09:00``, UTC
    unless it names its zone) or an age before ``now`` (``30m``, ``2h``, ``7d``). Aware UTC."""
    text = text.strip()
    if text[-1:] in _AGE_UNITS and text[:-1].isdigit():
        return now - int(text[:-1]) * _AGE_UNITS[text[-1]]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimeArgumentError(f"{option} {text!r}: use a date like 2026-11-24, a time like 2026-11-24T09:00, "
                                "or an age like 2h or 7d") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class OffsetClock:
    """Real time shifted by an offset that can be advanced (``:time +1h`` in the demo)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class ManualClock:
    """A clock that only moves when told to. Starts at ``start`` (default 2026-11-24 09:00 UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def format_utc(when: datetime) -> str:
    """A time for people, to the minute: ``2026-11-24 09:00 UTC``. Naive datetimes are UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
