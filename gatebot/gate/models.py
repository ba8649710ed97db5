"""Typed, lenient models of the Gate API's objects.

Lenient on purpose (see part 2 of ``shared/gate-api.md``): unknown fields are kept but ignored,
amounts may be JSON numbers or strings, optional fields may be missing or ``null``. Amounts are
``Decimal`` — response bodies are decoded with ``parse_float=Decimal`` so no float ever appears.

Must not import Slack, the scheduler, the store or the sandbox.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gatebot.money import Money, MoneyError, parse_decimal

__all__ = [
    "FINAL_STATUSES",
    "KNOWN_TYPE_CODES",
    "Balance",
    "Category",
    "CreateOrderRequest",
    "CreateOrderResult",
    "CustomerAccountField",
    "Deposit",
    "Health",
    "Order",
    "Page",
    "Product",
    "ProductKind",
    "ProductType",
    "TopupRequest",
    "order_kind",
    "product_kind",
    "unorderable_reason",
]

#: Order statuses after which nothing changes. Anything else is "not yet final".
FINAL_STATUSES = frozenset({"completed", "failed"})

#: Product type codes the contract documents.
REDEEM_CARD = "redeem_card"
DIRECT_TRANSFER = "direct_transfer"
DIRECT_TOP_UP = "direct_top_up"


class ProductKind(StrEnum):
    """How a product is ordered — decided once, by :func:`product_kind`, and read everywhere.

    * ``voucher``: a fixed price, bought by quantity; Gate delivers codes.
    * ``top-up``: an amount loaded onto a customer's account (``topup_request``); quantity 1.
    * ``unknown``: Gate says neither (an unmapped type with no price and no amount range): it cannot
      be ordered, and every surface says so rather than guessing.
    """

    VOUCHER = "voucher"
    TOP_UP = "top-up"
    UNKNOWN = "unknown"


_KIND_OF_TYPE = {REDEEM_CARD: ProductKind.VOUCHER, DIRECT_TOP_UP: ProductKind.TOP_UP,
                 DIRECT_TRANSFER: ProductKind.TOP_UP}
#: The product type codes the contract documents (anything else is a type we do not know).
KNOWN_TYPE_CODES = frozenset(_KIND_OF_TYPE)


def product_kind(type_code: str | None, *, price: Decimal | None, min_amount: Decimal | None,
                 max_amount: Decimal | None, publishes_account_fields: bool) -> ProductKind:
    """The one rule for "is this product a voucher or a top-up?".

    A documented type code decides. For a type gatebot cannot map, the product's own shape decides, so
    the order form and the validation always agree: an amount range or published customer-account
    fields make it a top-up (the form asks for the amount and the account), a price alone makes it a
    voucher (the form asks for a quantity), and neither makes it ``unknown`` (it cannot be ordered).
    """
    known = _KIND_OF_TYPE.get(type_code or "")
    if known is not None:
        return known
    if min_amount is not None or max_amount is not None or publishes_account_fields:
        return ProductKind.TOP_UP
    if price is not None:
        return ProductKind.VOUCHER
    return ProductKind.UNKNOWN


def unorderable_reason(name: str) -> str:
    """What every surface says about a product of kind ``unknown`` (the form, validation, the CLI)."""
    return (f"{name} can't be ordered: Gate publishes neither a price nor an amount range for it, so gatebot "
            "can't tell a voucher from a top-up. Ask the Gate account manager about its product type.")


def order_kind(amount: Decimal | None) -> ProductKind:
    """The kind of a stored order: validation gives an order an amount exactly when its product is a top-up."""
    return ProductKind.TOP_UP if amount is not None else ProductKind.VOUCHER


def _decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):  # only reachable if someone decoded JSON without parse_float
        value = repr(value)
    try:
        return parse_decimal(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


Amount = Annotated[Decimal | None, BeforeValidator(_decimal_or_none)]
RequiredAmount = Annotated[Decimal, BeforeValidator(_decimal_or_none)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class ProductType(_Model):
    id: int
    code: str
    name: str = ""


class Category(_Model):
    id: int
    name: str
    slug: str = ""
    parent_id: int | None = None


class CustomerAccountField(_Model):
    """One field of a top-up's ``customer_account`` (published by some products only)."""

    name: str
    label: str = ""
    type: str = "text"  # "text" | "email" | "phone"; unknown types are treated as text
    required: bool = True
    pattern: str | None = None

    @property
    def display_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


class Product(_Model):
    id: int
    name: str
    slug: str = ""
    category_id: int | None = None
    product_type_id: int | None = None
    region_code: str | None = None
    currency_code: str
    logo: str | None = None
    price: Amount = None
    min_amount: Amount = None
    max_amount: Amount = None
    step: Amount = None
    description: str | None = None
    is_active: bool = True
    customer_account_fields: list[CustomerAccountField] | None = None
    #: Not in the public docs: a per-product top-up margin rate (e.g. ``0.25``) when the server publishes it.
    margin: Amount = None

    @field_validator("currency_code")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class TopupRequest(_Model):
    amount: str
    customer_account: dict[str, str] = Field(default_factory=dict)


class CreateOrderRequest(_Model):
    """The create-order body. ``body()`` is the exact JSON sent (and persisted for retries)."""

    product_id: int
    currency_code: str | None = None
    external_ref: str | None = Field(default=None, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100)
    test: bool = False
    topup_request: TopupRequest | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Order(_Model):
    id: str
    product_id: int | None = None
    external_ref: str | None = None
    idempotency_key: str | None = None
    status: str
    order_content: dict[str, Any] | None = None
    currency_code: str | None = None
    charged_amount: Amount = None
    balance_before: Amount = None
    balance_after: Amount = None
    plexy_margin: Amount = None
    agent_charge: Amount = None
    is_test: bool = False
    region_code: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def charged(self) -> Money | None:
        if self.charged_amount is None or not self.currency_code:
            return None
        return Money.rounded(self.charged_amount, self.currency_code)


class CreateOrderResult(_Model):
    """What ``create_order`` returns: the order, and whether the server replayed an earlier create."""

    order: Order
    replayed: bool = False


class Balance(_Model):
    currency_code: str
    available: RequiredAmount
    updated_at: datetime | None = None

    def money(self) -> Money:
        return Money.rounded(self.available, self.currency_code)


class Deposit(_Model):
    id: int
    currency_code: str
    amount: RequiredAmount
    method: str | None = None
    status: str
    external_ref: str | None = None
    created_at: datetime | None = None
    posted_at: datetime | None = None

    def money(self) -> Money:
        return Money.rounded(self.amount, self.currency_code)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A paginated list: ``{"items": [...], "page": 1, "pageSize": 50, "total": N}``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    items: list[T]
    page: int = 1
    page_size: int = Field(default=50, alias="pageSize")
    total: int | None = None

    @property
    def has_more(self) -> bool:
        if self.total is not None:
            return self.page * self.page_size < self.total
        return len(self.items) >= self.page_size and len(self.items) > 0


class Health(_Model):
    """Result of ``GET /health``: only the HTTP status counts."""

    ok: bool
    status_code: int | None = None
    detail: str = ""
