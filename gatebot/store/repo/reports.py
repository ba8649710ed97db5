"""Read-only queries for metrics and finance exports (counts by kind, orders and deposits in a window).

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from gatebot.store.models import (
    Order,
    OrderStatus,
    SeenDeposit,
)

# -- metrics and finance exports (appended: read-only queries) ------------------------------------------------


def order_counts_by_kind(s: Session) -> dict[tuple[str, str], int]:
    """How many orders there are per ``(status, product_type)``: the metrics' orders gauge."""
    query = select(Order.status, Order.product_type, func.count()).group_by(col(Order.status), col(Order.product_type))
    return {(str(OrderStatus(status).value), str(kind)): int(n) for status, kind, n in s.exec(query).all()}


def orders_between(s: Session, since: datetime, until: datetime, *, currency: str | None = None) -> list[Order]:
    """Orders created in ``[since, until)`` (optionally in one ``currency``), oldest first."""
    query = select(Order).where(col(Order.created_at) >= since, col(Order.created_at) < until)
    if currency is not None:
        query = query.where(col(Order.currency) == currency.upper())
    return list(s.exec(query.order_by(col(Order.created_at), col(Order.id))).all())


def deposits_between(s: Session, since: datetime, until: datetime, *, currency: str | None = None) -> list[SeenDeposit]:
    """Deposits recorded from Gate whose time (posted, else created, else first seen) is in ``[since, until)``."""
    when = func.coalesce(col(SeenDeposit.posted_at), col(SeenDeposit.created_at), col(SeenDeposit.first_seen_at))
    query = select(SeenDeposit).where(when >= since, when < until)
    if currency is not None:
        query = query.where(col(SeenDeposit.currency) == currency.upper())
    return list(s.exec(query.order_by(when, col(SeenDeposit.id))).all())
