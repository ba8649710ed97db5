"""The queries of monitoring and finance: key listings, charged orders, posted deposits.

Plain functions that take a ``Session`` first, like :mod:`gatebot.store.repo` (which keeps the
key-value store itself, deposits and leases); transactions belong to the caller, nothing here commits.
Kept apart from ``repo`` so the alerting, health and finance modules have no SQL of their own.

Must not import Slack, the scheduler, the Gate client or ``db`` (no engines here).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from gatebot.store.models import KeyValue, Order, OrderStatus, SeenDeposit

__all__ = ["charged_and_released", "deposits_posted_since", "kv_keys", "posted_deposits"]

#: Indexed pre-filter on ``created_at`` for the spend queries: an order is charged within this long.
ORDER_LOOKBACK = timedelta(days=30)


def kv_keys(s: Session, prefix: str) -> list[str]:
    """Key-value keys starting with ``prefix`` (taken literally: ``%`` and ``_`` are not wildcards), sorted."""
    query = select(KeyValue.key).where(col(KeyValue.key).startswith(prefix, autoescape=True))
    return list(s.exec(query.order_by(col(KeyValue.key))).all())


def charged_and_released(
    s: Session, currency: str, since: datetime, until: datetime
) -> tuple[list[Decimal], list[Decimal]]:
    """The charges of our orders in ``currency`` submitted in ``[since, until)`` (else created), and the
    charges Gate released for orders that failed in that window."""
    cur = currency.upper()
    charged_at = func.coalesce(col(Order.submitted_at), col(Order.created_at))
    base = (col(Order.currency) == cur, col(Order.charged_amount).is_not(None),
            col(Order.created_at) >= since - ORDER_LOOKBACK)
    charges = s.exec(select(col(Order.charged_amount)).where(*base, charged_at >= since, charged_at < until))
    releases = s.exec(select(col(Order.charged_amount)).where(
        *base, col(Order.status) == OrderStatus.FAILED, col(Order.failed_at) >= since, col(Order.failed_at) < until))
    return [a for a in charges if a is not None], [a for a in releases if a is not None]


def posted_deposits(
    s: Session, since: datetime, until: datetime, *, currency: str | None = None
) -> list[SeenDeposit]:
    """Deposits that posted in ``[since, until)`` (by Gate's ``posted_at``, else when we first saw them)."""
    posted_at = func.coalesce(col(SeenDeposit.posted_at), col(SeenDeposit.first_seen_at))
    query = select(SeenDeposit).where(col(SeenDeposit.status) == "posted", posted_at >= since, posted_at < until)
    if currency is not None:
        query = query.where(col(SeenDeposit.currency) == currency.upper())
    return list(s.exec(query.order_by(col(SeenDeposit.id))).all())


def deposits_posted_since(s: Session, currency: str, since: datetime) -> list[SeenDeposit]:
    """Posted deposits in ``currency`` that posted, or were first seen or announced as posted, after ``since``."""
    query = select(SeenDeposit).where(
        col(SeenDeposit.status) == "posted", col(SeenDeposit.currency) == currency.upper(),
        or_(col(SeenDeposit.posted_at) > since, col(SeenDeposit.first_seen_at) > since,
            col(SeenDeposit.announced_at) > since),
    ).order_by(col(SeenDeposit.id))
    return list(s.exec(query).all())
