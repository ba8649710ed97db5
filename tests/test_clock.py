"""``format_utc``: the one way a time is written for people in text (CLI, alert texts, Slack fallbacks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gatebot.clock import format_utc


def test_format_utc_to_the_minute_in_utc() -> None:
    assert format_utc(datetime(2026, 11, 24, 9, 0, 59, tzinfo=UTC)) == "2026-11-24 09:00 UTC"
    berlin = timezone(timedelta(hours=1))
    assert format_utc(datetime(2026, 11, 24, 10, 30, tzinfo=berlin)) == "2026-11-24 09:30 UTC"
    assert format_utc(datetime(2026, 11, 24, 9, 30)) == "2026-11-24 09:30 UTC"  # naive means UTC
