"""Bulk batches: insert, read, the compare-and-set status change, and the queries over a batch's rows.

:func:`set_batch_status` is the only way a batch's status changes (compare-and-set on the status the
caller read). A batch's rows are ordinary orders (``Order.batch_id``); their statuses change through
``repo.set_status`` like any order's. Nothing here commits: the caller's unit of work does.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import attributes as orm_attributes
from sqlmodel import Session, col, select

from gatebot.store.models import Batch, BatchStatus, Order, OrderHistory, OrderStatus
from gatebot.store.repo._sql import in_chunks

__all__ = [
    "BatchConflict",
    "BatchRowCounts",
    "add_batch",
    "add_batch_rows",
    "batch_orders",
    "batch_product_counts",
    "batch_row_counts",
    "batch_rows_in",
    "batches_in",
    "count_rows",
    "get_batch",
    "orders_by_external_refs",
    "set_batch_status",
]


class BatchConflict(RuntimeError):
    """The batch's status in the database is not the one the caller based its change on."""

    def __init__(self, batch_id: int, expected: str, actual: str | None) -> None:
        self.batch_id = batch_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"batch B{batch_id} changed concurrently: expected {expected}, now {actual or 'gone'}")


def add_batch(s: Session, batch: Batch) -> Batch:
    """Insert a new batch; flushes so ``batch.id`` is set."""
    if batch.id is not None:
        raise ValueError(f"batch {batch.number} already exists; add_batch inserts new batches only")
    s.add(batch)
    s.flush()
    return batch


def add_batch_rows(s: Session, orders: Sequence[Order], *, actor: str, note: str) -> None:
    """Insert a batch's rows and their first history rows with one flush each (``add_order``'s checks, for
    thousands of rows in one transaction)."""
    for order in orders:
        if order.id is not None or not order.request_body_enc or order.batch_id is None:
            raise ValueError("add_batch_rows inserts new batch rows with their request bodies")
    s.add_all(orders)
    s.flush()
    s.add_all([OrderHistory(order_id=order.id, at=order.created_at, from_status=None, to_status=order.status,
                            actor=actor, note=note) for order in orders if order.id is not None])
    s.flush()


def get_batch(s: Session, batch_id: int) -> Batch | None:
    return s.get(Batch, batch_id)


def batches_in(s: Session, statuses: Iterable[BatchStatus], *, limit: int = 100) -> list[Batch]:
    """Batches in ``statuses``, oldest first."""
    wanted = [str(x) for x in statuses]
    query = select(Batch).where(col(Batch.status).in_(wanted)).order_by(col(Batch.id)).limit(limit)
    return list(s.exec(query).all())


def set_batch_status(s: Session, batch: Batch, to: BatchStatus, *, now: datetime, reason: str | None = None,
                     **values: Any) -> None:
    """Move ``batch`` to ``to`` (with ``values`` for other columns) if it still has the status it was read
    with; else raise :class:`BatchConflict` and change nothing."""
    if batch.id is None:
        raise ValueError("the batch has no number yet: insert it with add_batch first")
    if orm_attributes.get_history(batch, "status").has_changes():
        raise RuntimeError(f"batch {batch.number}: status was assigned directly; use set_batch_status only")
    s.flush()
    current = batch.status
    changes: dict[str, Any] = {"status": str(to), "updated_at": now, "status_reason": reason, **values}
    result = s.exec(update(Batch).where(col(Batch.id) == batch.id, col(Batch.status) == current)
                    .values(**changes).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        actual = s.exec(select(Batch.status).where(col(Batch.id) == batch.id)).first()
        raise BatchConflict(batch.id, current, actual)
    for name, value in changes.items():
        orm_attributes.set_committed_value(batch, name, value)


def batch_orders(s: Session, batch_id: int) -> list[Order]:
    """Every row of the batch, in file order."""
    query = select(Order).where(col(Order.batch_id) == batch_id).order_by(col(Order.batch_row))
    return list(s.exec(query).all())


def batch_rows_in(s: Session, batch_id: int, statuses: Sequence[OrderStatus], *, limit: int) -> list[Order]:
    """The batch's rows in ``statuses``, in file order (the runner's next row: ``[QUEUED]``, limit 1)."""
    query = (select(Order).where(col(Order.batch_id) == batch_id, col(Order.status).in_(list(statuses)))
             .order_by(col(Order.batch_row)).limit(limit))
    return list(s.exec(query).all())


class BatchRowCounts(dict[OrderStatus, int]):
    """How many of a batch's rows are in each status (every status present), plus what Gate charged so far."""

    charged: dict[str, Decimal]


def batch_row_counts(s: Session, batch_id: int) -> BatchRowCounts:
    """Rows per status, and per currency the charges Gate reported.

    Reads three narrow columns of every row (no secrets): a 5,000-row batch is one small query."""
    counts = BatchRowCounts(dict.fromkeys(OrderStatus, 0))
    counts.charged = {}
    query = select(col(Order.status), col(Order.currency), col(Order.charged_amount)).where(
        col(Order.batch_id) == batch_id)
    for status, currency, charged in s.exec(query).all():
        counts[OrderStatus(status)] += 1
        if charged is not None:
            counts.charged[currency] = counts.charged.get(currency, Decimal(0)) + charged
    return counts


def batch_product_counts(s: Session, batch_id: int) -> list[tuple[int, str, int]]:
    """``(product id, product name, rows)`` of the batch, most rows first (one grouped query)."""
    rows = func.count().label("rows")
    query = (select(col(Order.product_id), func.max(col(Order.product_name)), rows)
             .where(col(Order.batch_id) == batch_id).group_by(col(Order.product_id))
             .order_by(rows.desc(), col(Order.product_id)))
    return [(int(pid), str(name or "?"), int(n)) for pid, name, n in s.exec(query).all()]


def count_rows(s: Session, batch_id: int, statuses: Sequence[OrderStatus]) -> int:
    query = select(func.count()).select_from(Order).where(col(Order.batch_id) == batch_id,
                                                          col(Order.status).in_(list(statuses)))
    return int(s.exec(query).one())


def orders_by_external_refs(s: Session, refs: Iterable[str]) -> dict[str, Order]:
    """Our orders holding any of ``refs`` as their external_ref (exact), keyed by it: one query per 500."""
    wanted = sorted({r for r in refs if r})
    found: dict[str, Order] = {}
    for chunk in in_chunks(wanted):
        for order in s.exec(select(Order).where(col(Order.external_ref).in_(chunk))).all():
            found[order.external_ref] = order
    return found
