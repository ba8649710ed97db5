"""The order store's tables (SQLModel) and the column types they need.

What lives here: :class:`OrderStatus`, :class:`BatchStatus`, the tables (:class:`Order`, :class:`Batch`,
:class:`OrderHistory`, :class:`AuditEntry`, :class:`CatalogProduct`, :class:`SeenDeposit`, :class:`KeyValue`,
:class:`Lease`) bound to their own :data:`metadata` (not ``SQLModel.metadata``, so other packages' models never leak
into our migrations), and the column types :class:`UTCDateTime`, :class:`DecimalText` and
:class:`StatusText`. Queries live in ``repo.py``; engines, sessions and migrations in ``db.py``.

Conventions:

* Every timestamp is timezone-aware UTC; :class:`UTCDateTime` refuses naive datetimes on the way in
  and hands back aware UTC datetimes on the way out, on SQLite as on PostgreSQL.
* Money is ``Decimal`` stored as text (:class:`DecimalText`: lossless, refuses floats) next to a
  ``currency`` column; ``Order.money("charged_amount")`` pairs them into :class:`~gatebot.money.Money`.
* Secrets (the create-order body, the customer account, voucher codes) are only ever stored encrypted
  through a :class:`~gatebot.store.crypto.Cipher`; read and write them with the ``Order`` helpers.
* Every index is named explicitly or by the metadata's naming convention, so the hand-written migration
  and the models agree on both dialects. ``status`` and ``requester`` have no single-column index of
  their own: the composite ``(status, next_attempt_at)`` and ``(requester, created_at)`` indexes lead
  with them and serve those lookups, so a second index would only slow inserts.

Must not import Slack, the scheduler, ``repo``/``db`` or anything that opens a connection.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final, Literal

from pydantic import TypeAdapter
from sqlalchemy import Column, Dialect, ForeignKey, Index, Integer, MetaData, String, Text, column, false, func, types
from sqlalchemy.orm import registry
from sqlalchemy.sql.operators import OperatorType
from sqlmodel import Field, SQLModel

from gatebot import logs
from gatebot.gate.models import CustomerAccountField, ProductKind, order_kind, product_kind
from gatebot.money import Money
from gatebot.store.crypto import Cipher, open_json, seal_json

__all__ = [
    "BATCH_OPEN",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "AuditEntry",
    "Batch",
    "BatchStatus",
    "CatalogProduct",
    "DecimalText",
    "KeyValue",
    "Lease",
    "Order",
    "OrderHistory",
    "OrderStatus",
    "SeenDeposit",
    "StatusText",
    "StoreModel",
    "UTCDateTime",
    "metadata",
]


class OrderStatus(StrEnum):
    """Where an order is in OUR pipeline (Gate itself only knows pending/completed/failed)."""

    SUBMITTING = "submitting"  # intent saved; the create request may be in flight
    UNKNOWN = "unknown"  # outcome unknown: retry with the same key and body
    PENDING = "pending"  # Gate accepted it; not final yet
    WAITING_FUNDS = "waiting_funds"  # insufficient_balance: resume after a deposit, same key
    COMPLETED = "completed"
    FAILED = "failed"  # Gate said failed
    REJECTED = "rejected"  # Gate answered 4xx: definitive, reason recorded
    #: An inconsistency a person must settle (e.g. Gate answered with an order id another of our
    #: orders holds). Nothing more is sent or tracked automatically; ``status_reason`` says what to do.
    NEEDS_ATTENTION = "needs_attention"
    #: Over the approval threshold (or a daily limit): the intent is saved, nothing is sent until a
    #: second person approves it; rejection or expiry ends it as ``rejected`` without a Gate call.
    AWAITING_APPROVAL = "awaiting_approval"
    #: A row of a bulk batch (``batch_id``): the intent is saved, and only the batch runner sends it, at the
    #: batch's pace, by moving it to ``submitting`` first. Recovery leaves it alone; a cancelled or rejected
    #: batch ends it as ``rejected`` without a Gate call.
    QUEUED = "queued"


OPEN_STATUSES: Final = frozenset(
    {OrderStatus.SUBMITTING, OrderStatus.UNKNOWN, OrderStatus.PENDING, OrderStatus.WAITING_FUNDS,
     OrderStatus.NEEDS_ATTENTION, OrderStatus.AWAITING_APPROVAL, OrderStatus.QUEUED}
)
FINAL_STATUSES: Final = frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.REJECTED})


# -- column types -------------------------------------------------------------------------------------


class UTCDateTime(types.TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every dialect.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so the value is converted to UTC and
    stored without an offset (every value in UTC keeps text comparison correct); reading attaches UTC.
    Naive datetimes are refused: guessing their zone is how timestamps silently shift by hours.
    """

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> types.TypeEngine[Any]:
        if isinstance(value, timedelta):
            return types.Interval()
        return self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.utcoffset() is None:
            raise ValueError("naive datetime: store timezone-aware UTC datetimes (use the injected clock)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DecimalText(types.TypeDecorator[Decimal]):
    """A ``Decimal`` stored as its exact text (``str(Decimal)``): every digit and the exponent survive.

    Accepts ``Decimal``, ``int`` and numeric strings; refuses ``float``, ``bool`` and non-finite values.
    Amounts are never compared or summed in SQL (text order is not numeric order): do that in Python.
    """

    impl = Text
    cache_ok = True

    def __repr__(self) -> str:
        return "DecimalText()"

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool | float):
            raise TypeError(f"refusing to store {type(value).__name__} {value!r} as an amount: use Decimal")
        if isinstance(value, int):
            value = Decimal(value)
        elif isinstance(value, str):
            value = Decimal(value.strip())
        if not isinstance(value, Decimal):
            raise TypeError(f"expected a Decimal amount, got {type(value).__name__}")
        if not value.is_finite():
            raise ValueError(f"refusing to store a non-finite amount ({value})")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class StatusText(types.TypeDecorator[OrderStatus]):
    """An :class:`OrderStatus` stored as its plain string (no native enum type to migrate)."""

    impl = String(32)
    cache_ok = True

    def __repr__(self) -> str:
        return "StatusText()"

    def process_bind_param(self, value: OrderStatus | str | None, dialect: Dialect) -> str | None:
        return None if value is None else OrderStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> OrderStatus | None:
        return None if value is None else OrderStatus(value)


# -- metadata -------------------------------------------------------------------------------------------

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The store's own metadata: the migrations' target and what ``compare_metadata`` checks.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoreModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the store's tables: binds them to :data:`metadata` instead of ``SQLModel.metadata``."""


#: Order fields holding amounts in the order's currency (for :meth:`Order.money`).
MoneyField = Literal["amount", "estimated_cost", "charged_amount", "balance_before", "balance_after"]

_UNSET: Any = object()


def _money(value: Decimal | None, currency: str) -> Money | None:
    return None if value is None else Money(value, currency)


# -- tables ---------------------------------------------------------------------------------------------


class Order(StoreModel, table=True):
    """One business order; ``id`` is our order number (shown as ``#id``).

    Status changes go through ``repo.set_status`` only (it appends :class:`OrderHistory`).
    """

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_requester_created_at", "requester", "created_at"),
        Index("ix_orders_status_next_attempt_at", "status", "next_attempt_at"),
        # Lookups people type (repo.find_orders): inv-1001 for INV-1001; a Gate id's first characters.
        Index("ix_orders_external_ref_lower", func.lower(column("external_ref"))),
        # A batch's rows in file order (the runner, progress, results); one order per row.
        Index("ix_orders_batch_id_batch_row", "batch_id", "batch_row", unique=True),
        Index("ix_orders_gate_order_id_prefix", "gate_order_id",
              postgresql_ops={"gate_order_id": "varchar_pattern_ops"}).ddl_if(dialect="postgresql"),
        {"sqlite_autoincrement": True},  # numbers are never reused
    )

    id: int | None = Field(default=None, primary_key=True)
    external_ref: str = Field(max_length=64, unique=True, index=True)
    idempotency_key: str = Field(max_length=64, unique=True, index=True)
    gate_order_id: str | None = Field(default=None, max_length=64, unique=True, index=True)
    #: The Slack modal draft this order came from (a second submit of the draft finds this order).
    draft_id: str | None = Field(default=None, max_length=64, unique=True, index=True)
    product_id: int
    product_name: str = Field(sa_type=Text)
    product_type: str = Field(max_length=32)  # redeem_card | direct_top_up | direct_transfer
    currency: str = Field(max_length=3)
    amount: Decimal | None = Field(default=None, sa_type=DecimalText)  # top-up face amount
    quantity: int = 1
    estimated_cost: Decimal | None = Field(default=None, sa_type=DecimalText)
    charged_amount: Decimal | None = Field(default=None, sa_type=DecimalText)
    balance_before: Decimal | None = Field(default=None, sa_type=DecimalText)
    balance_after: Decimal | None = Field(default=None, sa_type=DecimalText)
    status: OrderStatus = Field(default=OrderStatus.SUBMITTING, sa_type=StatusText)
    status_reason: str | None = Field(default=None, sa_type=Text)
    error_code: str | None = Field(default=None, max_length=64)
    is_test: bool = False
    request_body_enc: str = Field(default="", sa_type=Text)
    customer_account_enc: str | None = Field(default=None, sa_type=Text)
    order_content_enc: str | None = Field(default=None, sa_type=Text)
    requester: str = Field(max_length=64)
    origin_channel: str | None = Field(default=None, max_length=32)
    #: The ts of the order's Slack status message (``None`` while none is posted); it is in
    #: ``origin_channel``, or in the requester's DM when ``message_in_dm``.
    message_ts: str | None = Field(default=None, max_length=32)
    message_in_dm: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    #: When a process claimed posting the first status message (``None``: nobody is posting it now).
    message_claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dm_sent: bool = False
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The requester's roles when the order was requested (comma-separated): role spending limits count them.
    requester_roles: str | None = Field(default=None, max_length=64)
    #: An approval request (``awaiting_approval``) stays open until then; ``None``: never needed approval.
    approval_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Who approved or rejected the request (or ``system:approvals`` for an expiry), when, and why.
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_reason: str | None = Field(default=None, sa_type=Text)
    #: The bulk batch this order is a row of (``None``: a single order), and its row number in the file
    #: (1-based data rows: the header is row 1 of the spreadsheet, so data row 1 is spreadsheet row 2).
    batch_id: int | None = None
    batch_row: int | None = None

    MONEY_FIELDS: ClassVar[tuple[str, ...]] = (
        "amount", "estimated_cost", "charged_amount", "balance_before", "balance_after",
    )  # fmt: skip

    @property
    def number(self) -> str:
        """Our order number for people: ``#123``."""
        return f"#{self.id}" if self.id is not None else "#?"

    @property
    def kind(self) -> ProductKind:
        """Voucher or top-up, as validation decided it (a top-up order carries an amount)."""
        return order_kind(self.amount)

    @property
    def is_open(self) -> bool:
        return OrderStatus(self.status) in OPEN_STATUSES

    @property
    def is_final(self) -> bool:
        return OrderStatus(self.status) in FINAL_STATUSES

    def money(self, field: MoneyField) -> Money | None:
        """``Money`` for one of the amount fields, in the order's currency (``None`` when unset)."""
        if field not in self.MONEY_FIELDS:
            raise ValueError(f"{field!r} is not an amount field of Order")
        value: Decimal | None = getattr(self, field)
        return _money(value, self.currency)

    # -- encrypted fields ----------------------------------------------------------------------------
    def set_secret_fields(
        self,
        cipher: Cipher,
        *,
        body: dict[str, Any] | None = _UNSET,
        account: dict[str, Any] | None = _UNSET,
        content: dict[str, Any] | None = _UNSET,
    ) -> None:
        """Encrypt and set the fields given (leave out a field to keep it; pass ``None`` to clear it).

        ``body`` is the exact create-order JSON (it is re-sent verbatim on retries, so it must be the
        ``CreateOrderRequest.body()`` that was or will be sent); ``account`` the customer account;
        ``content`` Gate's ``order_content`` (voucher codes, vendor ids).
        """
        if body is not _UNSET:
            if body is None:
                raise ValueError("an order's request body cannot be cleared")
            self.request_body_enc = seal_json(cipher, body)
        if account is not _UNSET:
            self.customer_account_enc = None if account is None else seal_json(cipher, account)
        if content is not _UNSET:
            self.order_content_enc = None if content is None else seal_json(cipher, content)

    def request_body(self, cipher: Cipher) -> dict[str, Any]:
        """The create-order body exactly as stored (for a retry with the same key)."""
        if not self.request_body_enc:
            raise ValueError(f"order {self.number} has no stored request body")
        return open_json(cipher, self.request_body_enc)

    def account(self, cipher: Cipher) -> dict[str, Any] | None:
        """The customer account (decrypted), or ``None``. Never log it."""
        if self.customer_account_enc is None:
            return None
        account = open_json(cipher, self.customer_account_enc)
        logs.remember_content(account)  # keep it out of every log line
        return account

    def content(self, cipher: Cipher) -> dict[str, Any] | None:
        """Gate's ``order_content`` (decrypted: may hold voucher codes), or ``None``. Never log it."""
        if self.order_content_enc is None:
            return None
        content = open_json(cipher, self.order_content_enc)
        logs.remember_content(content, skip_plain_words=True)  # voucher codes: keep them out of every log line
        return content


class BatchStatus(StrEnum):
    """Where a bulk batch is. Its rows are ordinary orders with their own statuses."""

    PLANNED = "planned"  # the file validated; nothing saved but the batch: waits for the requester's confirmation
    AWAITING_APPROVAL = "awaiting_approval"  # confirmed; rows saved ``queued``; waits for a second person
    RUNNING = "running"  # the runner sends its queued rows at the configured rate
    PAUSED = "paused"  # paused by a person: nothing more is sent until resumed
    WAITING_FUNDS = "waiting_funds"  # Gate said insufficient_balance: resumes when a deposit posts
    CANCELLED = "cancelled"  # the rows not sent yet ended ``rejected`` without a Gate call
    FINISHED = "finished"  # every row was sent; the rows settle on their own (tracking)
    REJECTED = "rejected"  # the approver said no (or the request expired): no row was sent


#: A batch in these statuses may still send rows.
BATCH_OPEN: Final = frozenset({BatchStatus.AWAITING_APPROVAL, BatchStatus.RUNNING, BatchStatus.PAUSED,
                               BatchStatus.WAITING_FUNDS})

_TOTALS: Final = TypeAdapter(dict[str, Decimal])


class Batch(StoreModel, table=True):
    """A bulk order from one CSV file (``id`` is shown as ``B12``). Its rows are :class:`Order` rows with
    ``batch_id`` set. Status changes go through ``repo.set_batch_status`` (compare-and-set)."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_status_updated_at", "status", "updated_at"),
                      {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    requester: str = Field(max_length=64)
    requester_roles: str | None = Field(default=None, max_length=64)
    origin_channel: str | None = Field(default=None, max_length=32)
    status: str = Field(max_length=32)
    status_reason: str | None = Field(default=None, sa_type=Text)
    #: The uploaded file's name, its SHA-256 (hex) and the file itself, encrypted (it holds customer-account
    #: fields); ``source_enc`` is cleared when the results expire.
    source_name: str = Field(max_length=255)
    source_digest: str = Field(max_length=64)
    source_enc: str | None = Field(default=None, sa_type=Text)
    rows: int
    #: Estimated cost per currency, exact: ``{"USD": "1234.50"}`` (see :meth:`totals`).
    totals_json: str = Field(sa_type=Text)
    approval_reason: str | None = Field(default=None, sa_type=Text)
    approval_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_reason: str | None = Field(default=None, sa_type=Text)
    #: The batch's progress message in Slack (``None`` until one is posted).
    message_channel: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Until when the requester can download the results (``GATEBOT_BULK_RESULTS_TTL`` after the end).
    results_expire_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def number(self) -> str:
        """The batch's reference for people: ``B12``."""
        return f"B{self.id}" if self.id is not None else "B?"

    @property
    def state(self) -> BatchStatus:
        return BatchStatus(self.status)

    def totals(self) -> dict[str, Money]:
        """The estimated cost per currency."""
        return {cur: Money(amount, cur) for cur, amount in _TOTALS.validate_json(self.totals_json).items()}

    def set_totals(self, totals: dict[str, Money]) -> None:
        self.totals_json = _TOTALS.dump_json({cur: m.amount for cur, m in sorted(totals.items())}).decode()


class OrderHistory(StoreModel, table=True):
    """One status change of an order (append-only). ``from_status`` is ``None`` for the creation row."""

    __tablename__ = "order_history"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(sa_column=Column(Integer, ForeignKey("orders.id"), nullable=False, index=True))
    at: datetime = Field(sa_type=UTCDateTime)
    from_status: OrderStatus | None = Field(default=None, sa_type=StatusText)
    to_status: OrderStatus = Field(sa_type=StatusText)
    actor: str = Field(max_length=64)  # "U123", "system:tracker", "system:recovery", "cli:alice"
    note: str | None = Field(default=None, sa_type=Text)


class AuditEntry(StoreModel, table=True):
    """Who did (or tried to do) what: order creation, viewing a voucher code, role denials."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)  # "order.create", "code.view", ...
    target: str | None = Field(default=None, max_length=128, index=True)
    allowed: bool
    detail: str | None = Field(default=None, sa_type=Text)


class CatalogProduct(StoreModel, table=True):
    """A cached Gate product (``id`` is Gate's product id). Refreshed by ``repo.replace_catalog``."""

    __tablename__ = "catalog_products"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = Field(sa_type=Text)
    slug: str = Field(max_length=128, index=True)
    type_code: str = Field(max_length=32)  # redeem_card | direct_top_up | direct_transfer | unknown
    category_id: int | None = None
    currency: str = Field(max_length=3)
    region_code: str | None = Field(default=None, max_length=16)
    price: Decimal | None = Field(default=None, sa_type=DecimalText)
    min_amount: Decimal | None = Field(default=None, sa_type=DecimalText)
    max_amount: Decimal | None = Field(default=None, sa_type=DecimalText)
    step: Decimal | None = Field(default=None, sa_type=DecimalText)
    margin: Decimal | None = Field(default=None, sa_type=DecimalText)  # a rate, e.g. 0.25
    is_active: bool = True
    account_fields_json: str | None = Field(default=None, sa_type=Text)
    description: str | None = Field(default=None, sa_type=Text)
    search_name: str = Field(sa_type=Text, index=True)  # lower-cased "name slug", for substring search
    refreshed_at: datetime = Field(sa_type=UTCDateTime)

    def money(self, field: Literal["price", "min_amount", "max_amount", "step"]) -> Money | None:
        if field not in ("price", "min_amount", "max_amount", "step"):
            raise ValueError(f"{field!r} is not an amount field of CatalogProduct")
        value: Decimal | None = getattr(self, field)
        return _money(value, self.currency)

    @property
    def kind(self) -> ProductKind:
        """Voucher, top-up or unknown (the one rule: :func:`gatebot.gate.models.product_kind`)."""
        published = self.account_fields_json not in (None, "", "[]")  # no JSON parsing: lists call this a lot
        return product_kind(self.type_code, price=self.price, min_amount=self.min_amount,
                            max_amount=self.max_amount, publishes_account_fields=published)

    def account_fields(self) -> list[CustomerAccountField] | None:
        """The customer-account fields the product publishes, or ``None`` when it publishes none."""
        if self.account_fields_json is None:
            return None
        return [CustomerAccountField.model_validate(item) for item in json.loads(self.account_fields_json)]


class SeenDeposit(StoreModel, table=True):
    """A Gate deposit we have seen (``id`` is Gate's deposit id), and whether it was announced."""

    __tablename__ = "deposits_seen"
    __table_args__ = (Index("ix_deposits_seen_status_announced_at", "status", "announced_at"),)

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    currency: str = Field(max_length=3)
    amount: Decimal = Field(sa_type=DecimalText)
    status: str = Field(max_length=16)  # pending | posted | rejected
    method: str | None = Field(default=None, max_length=32)
    external_ref: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def money(self) -> Money:
        return Money(self.amount, self.currency)


class KeyValue(StoreModel, table=True):
    """Small JSON state (alert state, cursors). ``version`` increments on every write (optimistic lock)."""

    __tablename__ = "kv"

    key: str = Field(max_length=128, primary_key=True)
    value: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    version: int = 1


class Lease(StoreModel, table=True):
    """A named, expiring lock held by one owner: "only one scheduler runs" across processes."""

    __tablename__ = "leases"

    name: str = Field(max_length=64, primary_key=True)
    owner: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
