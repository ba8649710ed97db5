"""Spending queries for the daily limits, and the open approval requests.

What an order "spends" is its estimated cost, from the moment its intent is saved (awaiting approval
included), unless it ended without a charge: ``rejected`` (by Gate, by an approver, or expired) and
``failed`` (Gate returns the charge) do not count.

:func:`lock_spending` serialises the daily-limit check with the save it guards, across tasks, threads and
processes: the check reads the spend, the save adds to it, and two such units interleaved would both pass.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import text
from sqlmodel import Session, col, select

from gatebot.store.models import Order, OrderStatus

#: Orders that ended without spending anything.
NOT_SPENT: Final = frozenset({OrderStatus.REJECTED, OrderStatus.FAILED})

#: The PostgreSQL advisory lock key of the spending check (``gbspend`` in ASCII; no other lock uses it).
SPENDING_LOCK_KEY: Final = 0x67627370656E64


def lock_spending(s: Session) -> None:
    """Hold the store's spending lock until the caller's transaction ends; call it before reading the spend.

    PostgreSQL: ``pg_advisory_xact_lock`` on one key for all spending. One key, not one per person or role:
    an order counts against its requester's limit AND every role limit its requester holds, and a batch
    against those in each of its currencies, so per-scope keys would have to be taken several at a time in
    one order to avoid deadlocks. The lock is held only for the few statements of a check and an insert,
    and orders are placed by people, so one key costs nothing measurable and cannot be wrong.

    SQLite: ``BEGIN IMMEDIATE``, the database's write lock, taken before the spend is read (Python's
    sqlite3 begins a transaction only at the first write, so a plain read would see a spend another
    process is about to add to). Within a process the store runs every unit of work on one thread anyway.
    A transaction already open has written, so it holds the write lock already.
    """
    connection = s.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SPENDING_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        assert raw is not None  # the session's connection is checked out
        if not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def roles_column(roles: frozenset[str] | set[str] | None) -> str | None:
    """How ``Order.requester_roles`` stores a set of roles: ``,finance,ops,`` (``None`` when empty)."""
    return f",{','.join(sorted(roles))}," if roles else None


def roles_of(column: str | None) -> frozenset[str]:
    """The roles a ``requester_roles`` column holds (the reverse of :func:`roles_column`)."""
    return frozenset(role for role in (column or "").split(",") if role)


def spent_since(s: Session, *, currency: str, since: datetime, requester: str | None = None,
                role: str | None = None) -> Decimal:
    """The estimated cost of the orders created strictly after ``since`` in ``currency`` that count as spent,
    by ``requester`` and/or by people who held ``role`` when they ordered."""
    query = (select(Order)
             .where(col(Order.currency) == currency.upper(), col(Order.created_at) > since,
                    col(Order.status).not_in(sorted(NOT_SPENT))))
    if requester is not None:
        query = query.where(col(Order.requester) == requester)
    if role is not None:
        query = query.where(col(Order.requester_roles).like(f"%,{role},%"))
    return sum((o.estimated_cost for o in s.exec(query).all() if o.estimated_cost is not None), Decimal("0"))


def awaiting_approval(s: Session, *, limit: int = 100) -> list[Order]:
    """Open approval requests, oldest first."""
    query = (select(Order).where(col(Order.status) == OrderStatus.AWAITING_APPROVAL)
             .order_by(col(Order.id)).limit(limit))
    return list(s.exec(query).all())


def approvals_expired(s: Session, now: datetime, *, limit: int = 200) -> list[Order]:
    """Open approval requests whose time ran out (``approval_expires_at <= now``), oldest first."""
    query = (select(Order).where(col(Order.status) == OrderStatus.AWAITING_APPROVAL,
                                 col(Order.approval_expires_at) <= now)
             .order_by(col(Order.id)).limit(limit))
    return list(s.exec(query).all())
