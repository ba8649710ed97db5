"""What was spent and deposited over a window, from our own orders' charges and the deposits seen.

The spend is the runway's pace (balance check) and a digest line; a deposit that posted is the cause
an all-clear of a low-balance alert names.

Every function takes the ``Session`` of the caller's unit of work and never commits.
Must not import Slack, the scheduler or ``gatebot.jobs``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from gatebot.money import Money
from gatebot.store import monitoring

__all__ = ["deposit_cause", "spent_between", "spent_last_24h"]


def spent_between(s: Session, currency: str, since: datetime, until: datetime) -> tuple[Money, int]:
    """Net spend in ``currency`` over ``[since, until)`` and how many orders were charged.

    Charges of our orders submitted in the window, minus the charges Gate released for orders that
    failed in it (a failed order gives its charge back), so a period's spend matches the balance.
    """
    cur = currency.upper()
    charges, releases = monitoring.charged_and_released(s, cur, since, until)
    return Money.rounded(sum(charges, Decimal(0)) - sum(releases, Decimal(0)), cur), len(charges)


def spent_last_24h(s: Session, currency: str, now: datetime) -> Money:
    """Net spend of the last 24 hours (the runway's pace), from our orders' charged amounts."""
    return spent_between(s, currency, now - timedelta(hours=24), now)[0]


def deposit_cause(s: Session, currency: str, since: datetime | None) -> str | None:
    """A hint for an all-clear: ``"deposit #12 of USD 500.00 posted"`` for deposits in ``currency`` that
    posted, or were first seen or announced as posted, after ``since`` (the previous reading)."""
    if since is None:
        return None
    rows = monitoring.deposits_posted_since(s, currency, since)
    if not rows:
        return None
    if len(rows) == 1:
        return f"deposit #{rows[0].id} of {rows[0].money().format()} posted"
    listed = ", ".join(f"#{d.id} ({d.money().format()})" for d in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"deposits {listed}{more} posted"
