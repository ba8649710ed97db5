"""Every query the store runs: plain functions that take a ``Session`` first and options by keyword.

What lives here: orders (add, get, :func:`find_order` by any reference, lists, due/open orders,
:func:`set_status` — the only way an order's status changes — and its history), the audit log, the
catalog cache, seen deposits, the key-value store and leases.

Transactions belong to the caller: nothing here commits. Functions flush when the caller needs a
generated id at once (``add_order``). Writes that other processes race for are single atomic statements
(``try_acquire_lease``, ``kv_set``) or compare-and-set (``set_status``, ``kv_update``), so they stay
correct with several processes on PostgreSQL and with several connections on SQLite.

Never log or put into an exception message a customer account, a voucher code or a request body.

Must not import Slack, the scheduler, the Gate client or ``db`` (no engines here).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol, cast

from sqlalchemy import Table, and_, case, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import attributes as orm_attributes
from sqlalchemy.orm import object_session
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from gatebot.gate.models import Deposit, Product
from gatebot.money import Money
from gatebot.store.models import (
    OPEN_STATUSES,
    AuditEntry,
    CatalogProduct,
    Lease,
    Order,
    OrderHistory,
    OrderStatus,
    SeenDeposit,
    metadata,
)
from gatebot.textinput import MAX_QUERY, MAX_REFERENCE, clean_text

__all__ = [
    "CATALOG_REFRESHED_KEY",
    "CatalogChanges",
    "KVConflict",
    "StatusConflict",
    "add_order",
    "audit",
    "catalog_refreshed_at",
    "external_ref_exists",
    "find_order",
    "find_orders",
    "get_order",
    "get_product",
    "history",
    "kv_delete",
    "kv_get",
    "kv_set",
    "kv_update",
    "lease_holder",
    "list_orders",
    "mark_announced",
    "normalize_ref",
    "open_orders",
    "order_counts",
    "orders_by_gate_ids",
    "orders_due",
    "recent_audit",
    "record_deposits",
    "reencrypt_secrets",
    "release_lease",
    "replace_catalog",
    "search_products",
    "set_status",
    "try_acquire_lease",
    "unannounced_deposits",
]

#: Largest order number a reference can name (the ``id`` column is a 32-bit integer on PostgreSQL).
MAX_ORDER_NUMBER: Final = 2**31 - 1
#: Longest string stored in a reference column (external_ref, idempotency_key, gate_order_id).
MAX_REF_LENGTH: Final = 64
#: kv key under which replace_catalog records when the catalog was last refreshed.
CATALOG_REFRESHED_KEY: Final = "store.catalog_refreshed_at"

#: Shortest Gate-id prefix a lookup searches by (a receipt shows the first 8 characters).
MIN_GATE_PREFIX: Final = 8
#: Most orders a fuzzy lookup returns (the caller lists them and asks for a better reference).
MAX_LOOKUP_MATCHES: Final = 10

_IN_CHUNK = 500  # bound on IN (...) list sizes
_NUMBER_RE = re.compile(r"#?\s*(\d{1,10})")


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


class KVConflict(RuntimeError):
    """``kv_update`` kept losing the race for a key (only under pathological contention)."""


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


def order_by_draft(s: Session, draft_id: str) -> Order | None:
    """The order created from a Slack modal draft, if any (``draft_id`` is unique)."""
    return s.exec(select(Order).where(col(Order.draft_id) == draft_id)).first()


def normalize_ref(ref: str) -> str:
    """Strip whitespace and surrounding ``<...>``/backticks as pasted from Slack: `` `<#12>` `` -> ``#12``.

    Control characters (a NUL is a ``DataError`` on PostgreSQL) and lone surrogates are dropped first.
    """
    text = clean_text(ref, limit=MAX_REFERENCE, clip=True)
    while len(text) >= 2 and ((text[0] == "<" and text[-1] == ">") or (text[0] == "`" and text[-1] == "`")):
        text = text[1:-1].strip()
    return text


def _order_number(text: str) -> int | None:
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        return None
    number = int(match.group(1))
    return number if 1 <= number <= MAX_ORDER_NUMBER else None


def _ref_variants(text: str) -> list[str]:
    variants = [text]
    if 32 <= len(text) <= 45:  # a UUID in any spelling -> also its canonical lower-case form
        try:
            canonical = str(uuid.UUID(text))
        except ValueError:
            pass
        else:
            if canonical != text:
                variants.append(canonical)
    return variants


def find_order(s: Session, ref: str) -> Order | None:
    """The order a person means by ``ref``: ``#123``/``123`` (our number), Gate's order id, our
    ``external_ref`` or the idempotency key.

    Whitespace and surrounding ``<>``/backticks are stripped. Refs and keys match exactly
    (case-sensitive), except that a UUID also matches its canonical lower-case spelling. One indexed
    query; when a reference matches several orders the precedence is: our number, Gate id,
    external_ref, idempotency key (so a bare ``123`` means order #123 even if some order's
    external_ref is also ``123``; that order is still found by ``INV-...``-style refs).
    """
    text = normalize_ref(ref)
    if not text:
        return None
    number = _order_number(text)
    strings = [v for v in _ref_variants(text) if len(v) <= MAX_REF_LENGTH]
    conditions: list[ColumnElement[bool]] = []
    if number is not None:
        conditions.append(col(Order.id) == number)
    if strings:
        conditions += [
            col(Order.gate_order_id).in_(strings),
            col(Order.external_ref).in_(strings),
            col(Order.idempotency_key).in_(strings),
        ]
    if not conditions:
        return None
    matches = list(s.exec(select(Order).where(or_(*conditions))).all())
    if not matches:
        return None
    wanted = set(strings)

    def rank(order: Order) -> int:
        if number is not None and order.id == number:
            return 0
        if order.gate_order_id in wanted:
            return 1
        if order.external_ref in wanted:
            return 2
        return 3

    return min(matches, key=lambda order: (rank(order), order.id or 0))


def _starts_with(s: Session, column: ColumnElement[str | None], prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix`` (``%`` and ``_`` in it are literal), answered from an index.

    PostgreSQL answers ``LIKE 'prefix%'`` from a ``varchar_pattern_ops`` index whatever its collation
    (migration 0003). SQLite's LIKE ignores case and so cannot use the column's index; the byte-wise
    range on it can, and the LIKE keeps the match exact.
    """
    like = column.like(_like_escape(prefix) + "%", escape="\\")
    if s.get_bind().dialect.name == "sqlite":
        return and_(column >= prefix, column < prefix + "\U0010ffff", like)
    return like


def find_orders(s: Session, ref: str, *, limit: int = MAX_LOOKUP_MATCHES) -> list[Order]:
    """The orders a person may mean by ``ref``, as typed or pasted: newest first, at most ``limit``.

    An exact match (:func:`find_order`'s rules) is the only answer when there is one. Otherwise: the
    external_ref without regard to case (``inv-1001`` finds ``INV-1001``; expression index on
    ``lower(external_ref)``), and Gate ids starting with ``ref`` (at least :data:`MIN_GATE_PREFIX`
    characters, as on a receipt). Several matches are all returned — the caller lists them rather than
    guess. Every condition is an index search, so this stays fast on a million orders.
    """
    exact = find_order(s, ref)
    if exact is not None:
        return [exact]
    text = normalize_ref(ref)
    if not text or len(text) > MAX_REF_LENGTH:
        return []
    conditions: list[ColumnElement[bool]] = [func.lower(col(Order.external_ref)) == text.lower()]
    if len(text) >= MIN_GATE_PREFIX:
        gate_id = cast("ColumnElement[str | None]", col(Order.gate_order_id))
        conditions += [_starts_with(s, gate_id, variant) for variant in dict.fromkeys((text, text.lower()))]
    statement = select(Order).where(or_(*conditions)).order_by(col(Order.id).desc()).limit(limit)
    return list(s.exec(statement).all())


def external_ref_exists(s: Session, ref: str) -> bool:
    return s.exec(select(Order.id).where(col(Order.external_ref) == ref).limit(1)).first() is not None


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


def orders_by_gate_ids(s: Session, ids: Iterable[str]) -> dict[str, Order]:
    """Our orders for a batch of Gate order ids (e.g. one page of ``GET /orders``), keyed by Gate id."""
    wanted = sorted({i for i in ids if i})
    found: dict[str, Order] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
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
    if order.id is None:
        raise ValueError("the order has no number yet: insert it with add_order first")
    if object_session(order) is not s:
        s.add(order)
    if orm_attributes.get_history(order, "status").has_changes():
        raise RuntimeError(f"order {order.number}: status was assigned directly; use set_status only")
    s.flush()
    current = OrderStatus(order.status)
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if target is OrderStatus.COMPLETED and order.completed_at is None:
        values["completed_at"] = now
    if target in (OrderStatus.FAILED, OrderStatus.REJECTED) and order.failed_at is None:
        values["failed_at"] = now
    result = s.exec(
        update(Order)
        .where(col(Order.id) == order.id, col(Order.status) == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        actual = s.exec(select(Order.status).where(col(Order.id) == order.id)).first()
        raise StatusConflict(order.id, current, None if actual is None else OrderStatus(actual))
    for name, value in values.items():
        orm_attributes.set_committed_value(order, name, value)
    entry = OrderHistory(order_id=order.id, at=now, from_status=current, to_status=target, actor=actor, note=note)
    s.add(entry)
    s.flush()
    return entry


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


# -- audit -----------------------------------------------------------------------------------------


def audit(
    s: Session,
    *,
    actor: str,
    action: str,
    target: str | None,
    allowed: bool,
    detail: str | None = None,
    now: datetime,
) -> AuditEntry:
    """Record who did (or was refused) what. ``detail`` is for people: never put codes or accounts in it."""
    entry = AuditEntry(at=now, actor=actor, action=action, target=target, allowed=allowed, detail=detail)
    s.add(entry)
    s.flush()
    return entry


def recent_audit(
    s: Session,
    *,
    limit: int = 50,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Audit entries newest first, optionally filtered; page with ``before_id``."""
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(col(AuditEntry.actor) == actor)
    if action is not None:
        query = query.where(col(AuditEntry.action) == action)
    if target is not None:
        query = query.where(col(AuditEntry.target) == target)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return list(s.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)).all())


# -- catalog ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogChanges:
    """What a catalog refresh changed (ids are Gate product ids)."""

    added: list[int] = field(default_factory=list)
    deactivated: list[int] = field(default_factory=list)
    reactivated: list[int] = field(default_factory=list)
    active: int = 0


def _account_fields_json(product: Product) -> str | None:
    if product.customer_account_fields is None:
        return None
    fields = [
        {"name": f.name, "label": f.label, "type": f.type, "required": f.required, "pattern": f.pattern}
        for f in product.customer_account_fields
    ]
    return json.dumps(fields, ensure_ascii=False)


def _search_name(name: str, slug: str) -> str:
    return f"{name} {slug}".lower()


def replace_catalog(
    s: Session, products: Sequence[Product], type_codes: dict[int, str], now: datetime
) -> CatalogChanges:
    """Make the cache match Gate's product list: upsert every product, deactivate the ones that vanished.

    ``type_codes`` maps Gate product-type ids to codes (``{3: "direct_top_up"}``); an unmapped type is
    stored as ``"unknown"``. Vanished products are kept (orders refer to them) but marked inactive.
    Run it from one process at a time (the scheduler's lease holder).
    """
    existing = {row.id: row for row in s.exec(select(CatalogProduct)).all()}
    added: list[int] = []
    reactivated: list[int] = []
    seen: set[int] = set()
    for product in products:
        row = existing.get(product.id)
        if row is None:
            row = CatalogProduct(
                id=product.id,
                name=product.name,
                slug=product.slug,
                type_code="unknown",
                currency=product.currency_code,
                search_name="",
                refreshed_at=now,
            )
            existing[product.id] = row
            s.add(row)
            added.append(product.id)
        elif not row.is_active and product.is_active and product.id not in seen:
            reactivated.append(product.id)
        seen.add(product.id)
        type_id = product.product_type_id
        row.name = product.name
        row.slug = product.slug
        row.type_code = type_codes.get(type_id, "unknown") if type_id is not None else "unknown"
        row.category_id = product.category_id
        row.currency = product.currency_code
        row.region_code = product.region_code
        row.price = product.price
        row.min_amount = product.min_amount
        row.max_amount = product.max_amount
        row.step = product.step
        row.margin = product.margin
        row.is_active = product.is_active
        row.account_fields_json = _account_fields_json(product)
        row.description = product.description
        row.search_name = _search_name(product.name, product.slug)
        row.refreshed_at = now
    deactivated: list[int] = []
    for product_id, row in existing.items():
        if product_id not in seen and row.is_active:
            row.is_active = False
            row.refreshed_at = now
            deactivated.append(product_id)
    s.flush()
    kv_set(s, CATALOG_REFRESHED_KEY, now, now)
    active = sum(1 for row in existing.values() if row.is_active)
    return CatalogChanges(added=added, deactivated=sorted(deactivated), reactivated=reactivated, active=active)


def get_product(s: Session, id_or_slug: int | str) -> CatalogProduct | None:
    """A cached product by Gate id (``456``/``"456"``) or slug (exact, then any case); active or not."""
    if isinstance(id_or_slug, int):
        return s.get(CatalogProduct, id_or_slug)
    text = id_or_slug.strip()
    if not text:
        return None
    if text.isdigit() and len(text) <= 10:
        by_id = s.get(CatalogProduct, int(text))
        if by_id is not None:
            return by_id
    exact = s.exec(select(CatalogProduct).where(col(CatalogProduct.slug) == text)).first()
    if exact is not None:
        return exact
    return s.exec(
        select(CatalogProduct)
        .where(func.lower(col(CatalogProduct.slug)) == text.lower())
        .order_by(col(CatalogProduct.id))
    ).first()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_products(s: Session, query: str, *, limit: int = 100, active_only: bool = True) -> list[CatalogProduct]:
    """Products whose name or slug contains every word of ``query`` (case-insensitive), by name.

    An empty query lists everything; a number also matches the product with that id.
    """
    query = clean_text(query, limit=MAX_QUERY, clip=True)  # a 20,000-word paste must not build the SQL
    words = list(dict.fromkeys(query.lower().split()))
    statement = select(CatalogProduct)
    if active_only:
        statement = statement.where(col(CatalogProduct.is_active).is_(True))
    if words:
        text_match = and_(
            *(col(CatalogProduct.search_name).like(f"%{_like_escape(word)}%", escape="\\") for word in words)
        )
        stripped = query.strip()
        if stripped.isdigit() and len(stripped) <= 10:
            statement = statement.where(or_(text_match, col(CatalogProduct.id) == int(stripped)))
        else:
            statement = statement.where(text_match)
    statement = statement.order_by(col(CatalogProduct.search_name), col(CatalogProduct.id)).limit(limit)
    return list(s.exec(statement).all())


def catalog_refreshed_at(s: Session) -> datetime | None:
    """When :func:`replace_catalog` last ran (``None``: never)."""
    value = kv_get(s, CATALOG_REFRESHED_KEY)
    return value if isinstance(value, datetime) else None


# -- deposits --------------------------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    """Gate's timestamps are UTC; a server that omits the offset still means UTC."""
    if value is None or value.utcoffset() is not None:
        return value
    return value.replace(tzinfo=UTC)


def record_deposits(s: Session, deposits: Iterable[Deposit], now: datetime) -> list[SeenDeposit]:
    """Remember Gate's deposits; return the ones seen for the first time or that became ``posted`` now.

    Those are what to announce; call :func:`mark_announced` once the announcement went out.
    """
    batch = list(deposits)
    ids = sorted({d.id for d in batch})
    known: dict[int, SeenDeposit] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        known.update({row.id: row for row in s.exec(select(SeenDeposit).where(col(SeenDeposit.id).in_(chunk)))})
    news: list[SeenDeposit] = []
    reported: set[int] = set()
    for deposit in batch:
        row = known.get(deposit.id)
        if row is None:
            row = SeenDeposit(
                id=deposit.id,
                currency=deposit.currency_code.upper(),
                amount=deposit.amount,
                status=deposit.status,
                method=deposit.method,
                external_ref=deposit.external_ref,
                created_at=_aware(deposit.created_at),
                posted_at=_aware(deposit.posted_at),
                first_seen_at=now,
            )
            s.add(row)
            known[deposit.id] = row
            news.append(row)
            reported.add(deposit.id)
            continue
        newly_posted = row.status != "posted" and deposit.status == "posted"
        row.status = deposit.status
        row.amount = deposit.amount
        row.currency = deposit.currency_code.upper()
        row.method = deposit.method
        row.external_ref = deposit.external_ref
        row.created_at = _aware(deposit.created_at) or row.created_at
        row.posted_at = _aware(deposit.posted_at) or row.posted_at
        if newly_posted and deposit.id not in reported:
            news.append(row)
            reported.add(deposit.id)
    s.flush()
    return news


def mark_announced(s: Session, deposit_ids: Iterable[int], now: datetime) -> int:
    """Set ``announced_at`` on deposits not announced yet; returns how many changed."""
    ids = sorted(set(deposit_ids))
    changed = 0
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        result = s.exec(
            update(SeenDeposit)
            .where(col(SeenDeposit.id).in_(chunk), col(SeenDeposit.announced_at).is_(None))
            .values(announced_at=now)
            .execution_options(synchronize_session="fetch")
        )
        changed += result.rowcount
    return changed


def unannounced_deposits(s: Session, *, status: str = "posted") -> list[SeenDeposit]:
    """Deposits in ``status`` never announced (e.g. the process stopped between record and announce)."""
    query = (
        select(SeenDeposit)
        .where(col(SeenDeposit.status) == status, col(SeenDeposit.announced_at).is_(None))
        .order_by(col(SeenDeposit.id))
    )
    return list(s.exec(query).all())


# -- key-value -------------------------------------------------------------------------------------

_TAG_DECIMAL = "$decimal"
_TAG_DATETIME = "$datetime"
_TAG_MONEY = "$money"


def _kv_encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        raise TypeError("refusing to store a float in kv: use Decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"refusing to store a non-finite Decimal ({value}) in kv")
        return {_TAG_DECIMAL: str(value)}
    if isinstance(value, Money):
        return {_TAG_MONEY: [str(value.amount), value.currency]}
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("refusing to store a naive datetime in kv: use timezone-aware UTC")
        return {_TAG_DATETIME: value.astimezone(UTC).isoformat()}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"kv dict keys must be strings, got {type(key).__name__}")
            out[key] = _kv_encode(item)
        return out
    if isinstance(value, list | tuple):
        return [_kv_encode(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in kv (JSON, Decimal, Money, datetime only)")


def _kv_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((tag, payload),) = obj.items()
        if tag == _TAG_DECIMAL and isinstance(payload, str):
            return Decimal(payload)
        if tag == _TAG_DATETIME and isinstance(payload, str):
            return datetime.fromisoformat(payload)
        if tag == _TAG_MONEY and isinstance(payload, list) and len(payload) == 2:
            return Money(Decimal(payload[0]), payload[1])
    return obj


def _kv_dumps(value: Any) -> str:
    return json.dumps(_kv_encode(value), ensure_ascii=False, separators=(",", ":"))


def _kv_loads(text: str) -> Any:
    return json.loads(text, object_hook=_kv_hook, parse_float=Decimal)


def _insert(s: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are implemented for PostgreSQL and SQLite, not {dialect}")


def kv_get(s: Session, key: str) -> Any:
    """The value under ``key`` (JSON; ``Decimal``, ``Money`` and aware ``datetime`` survive), or ``None``."""
    table = metadata.tables["kv"]
    text = s.connection().execute(table.select().with_only_columns(table.c.value).where(table.c.key == key)).scalar()
    return None if text is None else _kv_loads(text)


def kv_set(s: Session, key: str, value: Any, now: datetime) -> None:
    """Store ``value`` under ``key`` (one atomic upsert; bumps ``version``).

    ``value`` is JSON plus ``Decimal``, :class:`~gatebot.money.Money` and aware ``datetime``, which are
    stored tagged (``{"$decimal": "12.50"}``) so they come back as the same types. Floats are refused.
    """
    table = metadata.tables["kv"]
    text = _kv_dumps(value)
    statement = _insert(s, table).values(key=key, value=text, updated_at=now, version=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "value": statement.excluded.value,
            "updated_at": statement.excluded.updated_at,
            "version": table.c.version + 1,
        },
    )
    s.connection().execute(statement)


def kv_delete(s: Session, key: str) -> bool:
    table = metadata.tables["kv"]
    return s.connection().execute(table.delete().where(table.c.key == key)).rowcount > 0


def kv_update(s: Session, key: str, fn: Callable[[Any], Any], now: datetime, *, attempts: int = 20) -> Any:
    """Read-modify-write ``key`` safely against other processes; returns the new value.

    ``fn`` gets the current value (``None`` when absent) and returns the new one; it may be called more
    than once, so it must not have side effects. PostgreSQL locks the row (``SELECT ... FOR UPDATE``);
    on every dialect the write is also conditional on the ``version`` read, and retried if it lost.
    """
    table = metadata.tables["kv"]
    for _ in range(attempts):
        row = (
            s.connection()
            .execute(
                table.select()
                .with_only_columns(table.c.value, table.c.version)
                .where(table.c.key == key)
                .with_for_update()
            )
            .first()
        )
        if row is None:
            new_value = fn(None)
            inserted = (
                s.connection()
                .execute(
                    _insert(s, table)
                    .values(key=key, value=_kv_dumps(new_value), updated_at=now, version=1)
                    .on_conflict_do_nothing(index_elements=[table.c.key])
                    .returning(table.c.key)  # rowcount of an INSERT is not reliable on every driver
                )
                .first()
            )
            if inserted is not None:
                return new_value
            continue
        new_value = fn(_kv_loads(row.value))
        updated = s.connection().execute(
            table.update()
            .where(table.c.key == key, table.c.version == row.version)
            .values(value=_kv_dumps(new_value), updated_at=now, version=row.version + 1)
        )
        if updated.rowcount == 1:
            return new_value
    raise KVConflict(f"kv_update({key!r}) lost the race {attempts} times")


# -- leases ----------------------------------------------------------------------------------------


def try_acquire_lease(s: Session, name: str, owner: str, now: datetime, ttl_seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``owner`` until ``now + ttl_seconds``; ``True`` if we hold it.

    One atomic statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``): it succeeds when the lease is
    free, already ours (renewal: ``acquired_at`` is kept), or expired (``expires_at <= now``). On
    PostgreSQL a concurrent attempt waits for the other transaction and then re-checks, so two
    processes never both win. The lease counts once the caller's transaction commits: use a short
    session of its own.
    """
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    table = metadata.tables["leases"]
    statement = _insert(s, table).values(
        name=name, owner=owner, expires_at=now + timedelta(seconds=ttl_seconds), acquired_at=now
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={
            "owner": statement.excluded.owner,
            "expires_at": statement.excluded.expires_at,
            "acquired_at": case(
                (table.c.owner == statement.excluded.owner, table.c.acquired_at),
                else_=statement.excluded.acquired_at,
            ),
        },
        where=or_(table.c.expires_at <= now, table.c.owner == owner),
    ).returning(table.c.owner)
    won = s.connection().execute(upsert).first()
    _forget_lease(s, name)
    return won is not None


def release_lease(s: Session, name: str, owner: str) -> bool:
    """Give the lease up if ``owner`` holds it (so a successor need not wait for expiry)."""
    table = metadata.tables["leases"]
    result = s.connection().execute(table.delete().where(table.c.name == name, table.c.owner == owner))
    _forget_lease(s, name)
    return result.rowcount > 0


def lease_holder(s: Session, name: str, *, now: datetime | None = None) -> Lease | None:
    """The lease row for ``name``; with ``now``, ``None`` if it has expired."""
    query = select(Lease).where(col(Lease.name) == name).execution_options(populate_existing=True)
    lease = s.exec(query).first()
    if lease is None or (now is not None and lease.expires_at <= now):
        return None
    return lease


def _forget_lease(s: Session, name: str) -> None:
    """Lease rows change behind the ORM's back (core statements): drop any loaded copy."""
    for obj in list(s.identity_map.values()):
        if isinstance(obj, Lease) and obj.name == name:
            s.expunge(obj)


# -- metrics and finance exports (appended: read-only queries) ------------------------------------------------


def order_counts_by_kind(s: Session) -> dict[tuple[str, str], int]:
    """How many orders there are per ``(status, product_type)``: the metrics' orders gauge."""
    query = select(Order.status, Order.product_type, func.count()).group_by(col(Order.status),
                                                                            col(Order.product_type))
    return {(str(OrderStatus(status).value), str(kind)): int(n) for status, kind, n in s.exec(query).all()}


def orders_between(s: Session, since: datetime, until: datetime, *, currency: str | None = None) -> list[Order]:
    """Orders created in ``[since, until)`` (optionally in one ``currency``), oldest first."""
    query = select(Order).where(col(Order.created_at) >= since, col(Order.created_at) < until)
    if currency is not None:
        query = query.where(col(Order.currency) == currency.upper())
    return list(s.exec(query.order_by(col(Order.created_at), col(Order.id))).all())


def deposits_between(s: Session, since: datetime, until: datetime, *,
                     currency: str | None = None) -> list[SeenDeposit]:
    """Deposits recorded from Gate whose time (posted, else created, else first seen) is in ``[since, until)``."""
    when = func.coalesce(col(SeenDeposit.posted_at), col(SeenDeposit.created_at), col(SeenDeposit.first_seen_at))
    query = select(SeenDeposit).where(when >= since, when < until)
    if currency is not None:
        query = query.where(col(SeenDeposit.currency) == currency.upper())
    return list(s.exec(query.order_by(when, col(SeenDeposit.id))).all())

