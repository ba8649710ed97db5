"""Order rows: insert, read, list, the compare-and-set status change and its history, key rotation.

:func:`set_status` is the only way an order's status changes (compare-and-set on the status the caller
read, plus a history row). Nothing here commits: the caller's unit of work does.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple, Protocol

from sqlalchemy import Table, func, or_, update
from sqlalchemy.orm import attributes as orm_attributes
from sqlalchemy.orm import object_session
from sqlmodel import Session, col, select

from gatebot.store.models import (
    OPEN_STATUSES,
    Order,
    OrderHistory,
    OrderStatus,
    metadata,
)
from gatebot.store.repo._sql import in_chunks

#: Largest order number a reference can name (the ``id`` column is a 32-bit integer on PostgreSQL).
MAX_ORDER_NUMBER: Final = 2**31 - 1
#: Longest string stored in a reference column (external_ref, idempotency_key, gate_order_id).
MAX_REF_LENGTH: Final = 64


class StatusConflict(RuntimeError):
    """The order's status in the database is not the one the caller based its change on.

    Another process (or session) moved the order first; reload it and decide again.
    """

    def __init__(self, order_id: int, expected: OrderStatus, actual: OrderStatus | None) -> None:
        self.order_id = order_id
        self.expected = expected
        self.actual = actual
        now_is = "gone" if actual is None else f"now {actual}"
        super().__init__(f"order #{order_id} changed concurrently: expected status {expected}, {now_is}")


# -- orders ----------------------------------------------------------------------------------------


def add_order(s: Session, order: Order, *, actor: str | None = None, note: str | None = None) -> Order:
    """Insert a new order and its first history row (``from_status=None``); flushes so ``order.id`` is set.

    The caller must have set ``created_at``/``updated_at`` (from its clock) and the request body
    (``order.set_secret_fields(cipher, body=...)``). ``actor`` defaults to the requester.
    """
    if order.id is not None:
        raise ValueError(f"order {order.number} already has a number; add_order inserts new orders only")
    if not order.request_body_enc:
        raise ValueError("set the request body (order.set_secret_fields(cipher, body=...)) before add_order")
    if order.created_at is None or order.updated_at is None:
        raise ValueError("order.created_at and order.updated_at must be set (timezone-aware UTC)")
    for name in ("external_ref", "idempotency_key", "gate_order_id"):
        value = getattr(order, name)
        if value is not None and not (0 < len(value) <= MAX_REF_LENGTH):
            raise ValueError(f"order.{name} must be 1-{MAX_REF_LENGTH} characters, got {len(value)}")
    order.status = OrderStatus(order.status)
    s.add(order)
    s.flush()
    s.add(
        OrderHistory(
            order_id=_number_of(order),
            at=order.created_at,
            from_status=None,
            to_status=order.status,
            actor=actor or order.requester,
            note=note or "created",
        )
    )
    s.flush()
    return order


def _number_of(order: Order) -> int:
    if order.id is None:  # pragma: no cover - a flush assigns it
        raise RuntimeError("the database did not assign an order number")
    return order.id


def get_order(s: Session, order_id: int) -> Order | None:
    return s.get(Order, order_id)


def orders_by_ids(s: Session, ids: Iterable[int]) -> dict[int, Order]:
    """Our orders for a batch of order numbers (e.g. one page of Gate answers to apply), keyed by number."""
    wanted = sorted(set(ids))
    found: dict[int, Order] = {}
    for chunk in in_chunks(wanted):
        for order in s.exec(select(Order).where(col(Order.id).in_(chunk))).all():
            found[_number_of(order)] = order
    return found


def order_by_draft(s: Session, draft_id: str) -> Order | None:
    """The order created from a Slack modal draft, if any (``draft_id`` is unique)."""
    return s.exec(select(Order).where(col(Order.draft_id) == draft_id)).first()


def _statuses(status: OrderStatus | str | Iterable[OrderStatus | str]) -> list[OrderStatus]:
    if isinstance(status, str):
        return [OrderStatus(status)]
    return [OrderStatus(item) for item in status]


def list_orders(
    s: Session,
    *,
    status: OrderStatus | str | Iterable[OrderStatus | str] | None = None,
    requester: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Order]:
    """Orders newest first (highest number first), filtered; page with ``before_id=<last id seen>``.

    ``since`` is inclusive and ``until`` exclusive, both on ``created_at``.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    query = select(Order)
    if status is not None:
        query = query.where(col(Order.status).in_(_statuses(status)))
    if requester is not None:
        query = query.where(col(Order.requester) == requester)
    if since is not None:
        query = query.where(col(Order.created_at) >= since)
    if until is not None:
        query = query.where(col(Order.created_at) < until)
    if before_id is not None:
        query = query.where(col(Order.id) < before_id)
    return list(s.exec(query.order_by(col(Order.id).desc()).limit(limit)).all())


def orders_due(s: Session, statuses: Iterable[OrderStatus | str], now: datetime, limit: int = 100) -> list[Order]:
    """Orders in ``statuses`` whose ``next_attempt_at`` is unset or ``<= now``: unscheduled ones first,
    then the longest-waiting. Typically ``orders_due(s, OPEN_STATUSES, clock.now())``.
    """
    wanted = _statuses(statuses)
    if not wanted:
        return []
    query = (
        select(Order)
        .where(col(Order.status).in_(wanted))
        .where(or_(col(Order.next_attempt_at).is_(None), col(Order.next_attempt_at) <= now))
        .order_by(col(Order.next_attempt_at).asc().nulls_first(), col(Order.id).asc())
        .limit(limit)
    )
    return list(s.exec(query).all())


def open_orders(s: Session, statuses: Iterable[OrderStatus | str] = OPEN_STATUSES) -> list[Order]:
    """Every order in ``statuses`` (default: all open statuses), oldest first."""
    wanted = _statuses(statuses)
    if not wanted:
        return []
    return list(s.exec(select(Order).where(col(Order.status).in_(wanted)).order_by(col(Order.id))).all())


class TrackedOrder(NamedTuple):
    """What tracking needs of an order at Gate: our number, Gate's id, when it was created, whether
    Gate's order content is stored already."""

    id: int
    gate_order_id: str
    created_at: datetime
    has_content: bool


def orders_at_gate(s: Session, statuses: Iterable[OrderStatus | str]) -> list[TrackedOrder]:
    """Orders in ``statuses`` that have a Gate order id, oldest first, as :class:`TrackedOrder` rows
    (a few columns, not whole orders: tracking reads thousands of them every pass)."""
    wanted = _statuses(statuses)
    if not wanted:
        return []
    query = (
        select(Order.id, Order.gate_order_id, Order.created_at, col(Order.order_content_enc).is_not(None))
        .where(col(Order.status).in_(wanted), col(Order.gate_order_id).is_not(None))
        .order_by(col(Order.id))
    )
    return [TrackedOrder(*row) for row in s.exec(query).all()]


def orders_by_gate_ids(s: Session, ids: Iterable[str]) -> dict[str, Order]:
    """Our orders for a batch of Gate order ids (e.g. one page of ``GET /orders``), keyed by Gate id."""
    wanted = sorted({i for i in ids if i})
    found: dict[str, Order] = {}
    for chunk in in_chunks(wanted):
        for order in s.exec(select(Order).where(col(Order.gate_order_id).in_(chunk))).all():
            assert order.gate_order_id is not None
            found[order.gate_order_id] = order
    return found


def order_counts(s: Session, *, since: datetime | None = None, until: datetime | None = None) -> dict[OrderStatus, int]:
    """How many orders are in each status (every status present, zeros included), by ``created_at`` window."""
    query = select(Order.status, func.count()).group_by(col(Order.status))
    if since is not None:
        query = query.where(col(Order.created_at) >= since)
    if until is not None:
        query = query.where(col(Order.created_at) < until)
    counts = dict.fromkeys(OrderStatus, 0)
    for status, count in s.exec(query).all():
        counts[OrderStatus(status)] = int(count)
    return counts


def set_status(
    s: Session,
    order: Order,
    to_status: OrderStatus | str,
    *,
    actor: str,
    note: str | None = None,
    now: datetime,
) -> OrderHistory:
    """Move ``order`` to ``to_status`` and append the history row, in the caller's transaction.

    Compare-and-set: the UPDATE only applies if the row still has the status this ``order`` object
    holds; otherwise :class:`StatusConflict` is raised and nothing changes (two processes cannot both
    complete an order). Other pending changes on ``order`` are flushed first. Entering ``completed``
    sets ``completed_at`` and entering ``failed``/``rejected`` sets ``failed_at`` when still unset.
    Moving to the same status is allowed (it records a history note, e.g. another retry).
    """
    target = OrderStatus(to_status)
    [current] = _compare_and_set(s, [order], target, now=now)
    entry = OrderHistory(**_history_row(_number_of(order), current, target, actor=actor, note=note, now=now))
    s.add(entry)
    s.flush()
    return entry


def set_statuses(
    s: Session,
    orders: Sequence[Order],
    to_status: OrderStatus | str,
    *,
    actor: str,
    note: str | None = None,
    now: datetime,
) -> None:
    """:func:`set_status` for many orders at once (same target, actor and note), for batch speed: one
    flush, one compare-and-set UPDATE per group of orders sharing a current status, and the history
    rows inserted with one statement (not loaded into the session: read them with :func:`history`).

    All or nothing as the caller's transaction is: if any order's status moved meanwhile,
    :class:`StatusConflict` names the first such order and the caller must roll back.
    """
    target = OrderStatus(to_status)
    moved_from = _compare_and_set(s, orders, target, now=now)
    if orders:
        rows = [_history_row(_number_of(order), current, target, actor=actor, note=note, now=now)
                for order, current in zip(orders, moved_from, strict=True)]
        s.connection().execute(metadata.tables["order_history"].insert(), rows)


def _history_row(order_id: int, current: OrderStatus, target: OrderStatus, *, actor: str, note: str | None,
                 now: datetime) -> dict[str, Any]:
    return {"order_id": order_id, "at": now, "from_status": current, "to_status": target, "actor": actor,
            "note": note}


def _compare_and_set(s: Session, orders: Sequence[Order], target: OrderStatus, *, now: datetime) -> list[OrderStatus]:
    """Move ``orders`` to ``target`` if each still has the status its object holds (after flushing their
    other changes); the statuses they moved from, in the order of ``orders``. See :func:`set_status`."""
    for order in orders:
        if order.id is None:
            raise ValueError("the order has no number yet: insert it with add_order first")
        if object_session(order) is not s:
            s.add(order)
        if orm_attributes.get_history(order, "status").has_changes():
            raise RuntimeError(f"order {order.number}: status was assigned directly; use set_status only")
    s.flush()
    moved_from = [OrderStatus(order.status) for order in orders]
    groups: dict[tuple[OrderStatus, bool, bool], list[Order]] = {}
    for order, current in zip(orders, moved_from, strict=True):
        sets_completed = target is OrderStatus.COMPLETED and order.completed_at is None
        sets_failed = target in (OrderStatus.FAILED, OrderStatus.REJECTED) and order.failed_at is None
        groups.setdefault((current, sets_completed, sets_failed), []).append(order)
    for (current, sets_completed, sets_failed), members in groups.items():
        values: dict[str, Any] = {"status": target, "updated_at": now}
        if sets_completed:
            values["completed_at"] = now
        if sets_failed:
            values["failed_at"] = now
        for part in in_chunks(members):
            chunk = {_number_of(o): o for o in part}
            updated = set(
                s.exec(
                    update(Order)
                    .where(col(Order.id).in_(list(chunk)), col(Order.status) == current)
                    .values(**values)
                    .returning(col(Order.id))
                    .execution_options(synchronize_session=False)
                ).scalars()
            )
            if len(updated) != len(chunk):
                moved = next(order_id for order_id in chunk if order_id not in updated)
                actual = s.exec(select(Order.status).where(col(Order.id) == moved)).first()
                raise StatusConflict(moved, current, None if actual is None else OrderStatus(actual))
            for order in chunk.values():
                for name, value in values.items():
                    orm_attributes.set_committed_value(order, name, value)
    return moved_from


def history(s: Session, order_id: int) -> list[OrderHistory]:
    """The order's status changes, oldest first."""
    query = select(OrderHistory).where(col(OrderHistory.order_id) == order_id).order_by(col(OrderHistory.id))
    return list(s.exec(query).all())


class _Rotating(Protocol):
    def rotate(self, stored: str) -> str: ...


def reencrypt_secrets(s: Session, cipher: _Rotating, *, batch_size: int = 1000) -> int:
    """Re-encrypt every order's secret fields with the cipher's first key (after a key rotation).

    ``cipher`` is a :class:`~gatebot.store.crypto.FernetCipher` holding the new key first and the old
    keys after it; plain (``p1:``) values get encrypted too. Returns the number of orders rewritten.
    Runs in the caller's transaction: commit it, then the old key can be dropped.
    """
    table: Table = metadata.tables["orders"]
    columns = ("request_body_enc", "customer_account_enc", "order_content_enc")
    s.flush()  # pending ORM changes first: loaded orders are expired (re-read) at the end
    last_id = 0
    rewritten = 0
    while True:
        rows = (
            s.connection()
            .execute(
                table.select()
                .with_only_columns(table.c.id, *(table.c[name] for name in columns))
                .where(table.c.id > last_id)
                .order_by(table.c.id)
                .limit(batch_size)
            )
            .all()
        )
        if not rows:
            s.expire_all()  # loaded Order objects still hold the old ciphertext
            return rewritten
        for row in rows:
            last_id = row.id
            new_values = {name: cipher.rotate(row._mapping[name]) for name in columns if row._mapping[name]}
            if new_values:
                s.connection().execute(table.update().where(table.c.id == row.id).values(**new_values))
                rewritten += 1
