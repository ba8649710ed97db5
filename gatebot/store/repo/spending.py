"""Spending queries for the daily limits, and the open approval requests.

What an order "spends" is its estimated cost, from the moment its intent is saved (awaiting approval
included), unless it ended without a charge: ``rejected`` (by Gate, by an approver, or expired) and
``failed`` (Gate returns the charge) do not count.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlmodel import Session, col, select

from gatebot.store.models import Order, OrderStatus

#: Orders that ended without spending anything.
NOT_SPENT: Final = frozenset({OrderStatus.REJECTED, OrderStatus.FAILED})


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
