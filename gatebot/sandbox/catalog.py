"""Seed data of the Gate sandbox: product types, categories, products, opening balances, deposit history.

The catalog is plain frozen data (:class:`Catalog`), built fresh by :func:`default_catalog`, so a
test can hand the simulator a catalog of its own. It is shaped to exercise the contract in
``shared/gate-api.md``: vouchers (``redeem_card``, fixed price) and top-ups (``direct_top_up``,
min/max/step and a margin) in USD, EUR and GBP; top-ups that publish ``customer_account_fields``
and top-ups that do not; an inactive voucher and an inactive top-up; a price that is not whole
(``9.99``) and a step that is not whole (``0.5``); a margin that makes half-up rounding matter
(``0.035``: ``3.00`` costs ``3.105`` → ``3.11``); and product 199, which the default
:class:`~gatebot.sandbox.simulator.SandboxConfig` makes fail every time.

``to_api`` methods give the wire shape: product amounts as JSON-ready ``Decimal`` numbers
(``10``, ``0.5``), the top-up ``margin`` as a string (``"0.25"``).

Pure data: must not import Slack, the scheduler, HTTP libraries or anything else from gatebot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "ALWAYS_FAILS_PRODUCT_ID",
    "DIRECT_TOP_UP",
    "DIRECT_TRANSFER",
    "REDEEM_CARD",
    "AccountFieldSpec",
    "Catalog",
    "CategorySpec",
    "DepositSpec",
    "ProductSpec",
    "ProductTypeSpec",
    "default_catalog",
]

#: Product type ids of the sandbox (shared facts: 1 redeem_card, 2 direct_transfer, 3 direct_top_up).
REDEEM_CARD = 1
DIRECT_TRANSFER = 2
DIRECT_TOP_UP = 3

#: The seeded voucher that :class:`~gatebot.sandbox.simulator.SandboxConfig` fails by default.
ALWAYS_FAILS_PRODUCT_ID = 199

AccountFieldType = Literal["text", "email", "phone"]


def _number(value: Decimal | None) -> Decimal | None:
    """A product amount as the wire shows it: ``10`` not ``10.00``, ``0.5`` not ``0.50``."""
    if value is None:
        return None
    normal = value.normalize()
    # normalize() turns 100 into 1E+2; quantize back to an integer exponent when whole.
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


@dataclass(frozen=True, slots=True)
class ProductTypeSpec:
    id: int
    code: str
    name: str

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name}


@dataclass(frozen=True, slots=True)
class CategorySpec:
    id: int
    name: str
    slug: str
    parent_id: int | None = None

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "slug": self.slug, "parent_id": self.parent_id}


@dataclass(frozen=True, slots=True)
class AccountFieldSpec:
    """One published ``customer_account`` field of a top-up product."""

    name: str
    label: str
    type: AccountFieldType = "text"
    required: bool = True
    pattern: str | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "label": self.label, "type": self.type,
                                "required": self.required}
        if self.pattern is not None:
            data["pattern"] = self.pattern
        return data


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """A product. Vouchers have a fixed ``price``; top-ups take an amount in ``min..max`` by ``step``.

    ``account_fields`` is ``None`` when the product does not publish ``customer_account_fields``
    (the contract allows both); ``margin`` is the top-up surcharge rate (``0.25`` = 25 %).
    """

    id: int
    name: str
    slug: str
    category_id: int
    product_type_id: int
    region_code: str
    currency_code: str
    price: Decimal
    description: str
    is_active: bool = True
    logo: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    step: Decimal | None = None
    margin: Decimal = Decimal(0)
    account_fields: tuple[AccountFieldSpec, ...] | None = None

    def __post_init__(self) -> None:
        if self.is_topup and (self.min_amount is None or self.max_amount is None or self.step is None):
            raise ValueError(f"top-up product {self.id} needs min_amount, max_amount and step")
        if self.is_topup and self.step is not None and self.step <= 0:
            raise ValueError(f"top-up product {self.id} needs a positive step")

    @property
    def is_topup(self) -> bool:
        """Amount-based (takes a ``topup_request``) rather than a fixed-price voucher."""
        return self.product_type_id != REDEEM_CARD

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "category_id": self.category_id,
            "product_type_id": self.product_type_id,
            "region_code": self.region_code,
            "currency_code": self.currency_code,
            "logo": self.logo,
            "price": _number(self.price),
            "min_amount": _number(self.min_amount),
            "max_amount": _number(self.max_amount),
            "step": _number(self.step),
            "description": self.description,
            "is_active": self.is_active,
        }
        if self.is_topup:
            data["margin"] = f"{self.margin:f}"
        if self.account_fields is not None:
            data["customer_account_fields"] = [f.to_api() for f in self.account_fields]
        return data


@dataclass(frozen=True, slots=True)
class DepositSpec:
    """A deposit of the seeded history, dated relative to the simulator's start (``age`` ago)."""

    id: int
    currency_code: str
    amount: Decimal
    method: Literal["bank_wire", "manual"]
    status: Literal["pending", "posted", "rejected"]
    external_ref: str | None
    age: timedelta
    #: How long after creation it was posted (posted deposits only).
    posted_after: timedelta = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class Catalog:
    product_types: tuple[ProductTypeSpec, ...]
    categories: tuple[CategorySpec, ...]
    products: tuple[ProductSpec, ...]
    #: Opening ``available`` per currency, in major units.
    balances: Mapping[str, Decimal]
    deposits: tuple[DepositSpec, ...] = ()
    _by_id: Mapping[int, ProductSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {p.id: p for p in self.products}
        if len(by_id) != len(self.products):
            raise ValueError("product ids must be unique")
        if len({d.id for d in self.deposits}) != len(self.deposits):
            raise ValueError("deposit ids must be unique")
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))
        object.__setattr__(self, "balances", MappingProxyType(dict(self.balances)))

    def product(self, product_id: int) -> ProductSpec | None:
        return self._by_id.get(product_id)


def _logo(slug: str) -> str:
    return f"https://cdn.sandbox.invalid/logos/{slug}.png"


_D = Decimal


def default_catalog() -> Catalog:
    """The seeded sandbox catalog (see the module docstring for what it is meant to exercise)."""
    types = (
        ProductTypeSpec(REDEEM_CARD, "redeem_card", "Gift cards and vouchers"),
        ProductTypeSpec(DIRECT_TRANSFER, "direct_transfer", "Direct transfer"),
        ProductTypeSpec(DIRECT_TOP_UP, "direct_top_up", "Direct top-up"),
    )
    categories = (
        CategorySpec(1, "Gift cards", "gift-cards"),
        CategorySpec(2, "Gaming gift cards", "gaming-gift-cards", parent_id=1),
        CategorySpec(3, "Entertainment gift cards", "entertainment-gift-cards", parent_id=1),
        CategorySpec(4, "Game top-ups", "game-top-ups"),
        CategorySpec(5, "Mobile top-ups", "mobile-top-ups"),
    )
    vouchers = (
        ProductSpec(101, "Steam Gift Card 20 USD", "steam-gift-card-20-usd", 2, REDEEM_CARD, "US", "USD",
                    _D(20), "Steam wallet code worth 20 USD.", logo=_logo("steam")),
        ProductSpec(102, "Steam Gift Card 50 USD", "steam-gift-card-50-usd", 2, REDEEM_CARD, "US", "USD",
                    _D(50), "Steam wallet code worth 50 USD.", logo=_logo("steam")),
        ProductSpec(103, "PlayStation Store 10 GBP", "playstation-store-10-gbp", 2, REDEEM_CARD, "GB", "GBP",
                    _D(10), "PlayStation Store credit for UK accounts.", logo=_logo("playstation")),
        ProductSpec(104, "Netflix Gift Card 25 EUR", "netflix-gift-card-25-eur", 3, REDEEM_CARD, "DE", "EUR",
                    _D(25), "Netflix gift card for German accounts.", logo=_logo("netflix")),
        ProductSpec(105, "Spotify Premium 1 Month", "spotify-premium-1-month", 3, REDEEM_CARD, "FR", "EUR",
                    _D("9.99"), "One month of Spotify Premium.", logo=None),
        ProductSpec(106, "Amazon.co.uk Gift Card 25 GBP", "amazon-uk-gift-card-25-gbp", 3, REDEEM_CARD, "GB",
                    "GBP", _D(25), "Amazon.co.uk gift card.", logo=_logo("amazon")),
        ProductSpec(107, "iTunes Gift Card 15 EUR", "itunes-gift-card-15-eur", 3, REDEEM_CARD, "DE", "EUR",
                    _D(15), "Discontinued by the vendor.", is_active=False, logo=_logo("itunes")),
        ProductSpec(ALWAYS_FAILS_PRODUCT_ID, "Sandbox Always-Failing Voucher 5 USD", "sandbox-always-fails",
                    2, REDEEM_CARD, "US", "USD", _D(5),
                    "Sandbox only: every order of this product fails (and its charge is released).",
                    logo=None),
    )
    topups = (
        ProductSpec(456, "Steam Wallet Top Up", "steam-wallet", 4, DIRECT_TOP_UP, "US", "USD", _D(10),
                    "Loads USD straight into a Steam account.", logo=_logo("steam"),
                    min_amount=_D(5), max_amount=_D(100), step=_D(1), margin=_D("0.25"),
                    account_fields=(
                        AccountFieldSpec("steam_login", "Steam login", "text", True, r"[A-Za-z0-9_]{3,32}"),
                        AccountFieldSpec("email", "Email for the receipt", "email", False),
                    )),
        ProductSpec(457, "PUBG Mobile UC", "pubg-mobile-uc", 4, DIRECT_TOP_UP, "US", "USD", _D(10),
                    "Unknown Cash for PUBG Mobile, loaded by player id.", logo=_logo("pubg"),
                    min_amount=_D(1), max_amount=_D(50), step=_D(1), margin=_D("0.10"),
                    account_fields=(
                        AccountFieldSpec("player_id", "Player ID", "text", True, r"[0-9]{5,12}"),
                    )),
        ProductSpec(458, "Vodafone UK Mobile Top-Up", "vodafone-uk", 5, DIRECT_TOP_UP, "GB", "GBP", _D(10),
                    "Prepaid credit for Vodafone UK numbers.", logo=_logo("vodafone"),
                    min_amount=_D(5), max_amount=_D(50), step=_D(5), margin=_D("0.05"),
                    account_fields=(
                        AccountFieldSpec("phone", "Mobile number", "phone", True, r"\+44[0-9]{10}"),
                    )),
        ProductSpec(459, "Orange France Recharge", "orange-france", 5, DIRECT_TOP_UP, "FR", "EUR", _D(10),
                    "Prepaid credit for Orange France numbers.", logo=_logo("orange"),
                    min_amount=_D("2.5"), max_amount=_D(60), step=_D("0.5"), margin=_D("0.08")),
        ProductSpec(460, "Free Fire Diamonds", "free-fire-diamonds", 4, DIRECT_TOP_UP, "US", "USD", _D(5),
                    "Diamonds for Garena Free Fire.", logo=_logo("free-fire"),
                    min_amount=_D(1), max_amount=_D(200), step=_D("0.5"), margin=_D("0.035")),
        ProductSpec(461, "Three UK Mobile Top-Up", "three-uk", 5, DIRECT_TOP_UP, "GB", "GBP", _D(10),
                    "Discontinued: Three UK moved to another provider.", is_active=False, logo=None,
                    min_amount=_D(5), max_amount=_D(30), step=_D(5), margin=_D("0.05")),
    )
    deposits = (
        DepositSpec(1, "USD", _D("5000.00"), "bank_wire", "posted", "WIRE-2001", timedelta(days=40)),
        DepositSpec(2, "EUR", _D("2000.00"), "bank_wire", "posted", "WIRE-2002", timedelta(days=30)),
        DepositSpec(3, "GBP", _D("800.00"), "bank_wire", "posted", "WIRE-2003", timedelta(days=25)),
        DepositSpec(4, "USD", _D("1000.00"), "bank_wire", "rejected", "WIRE-2004", timedelta(days=15)),
        DepositSpec(5, "EUR", _D("500.00"), "manual", "posted", None, timedelta(days=7)),
        DepositSpec(6, "USD", _D("750.00"), "bank_wire", "pending", "WIRE-2006", timedelta(days=1)),
    )
    return Catalog(
        product_types=types,
        categories=categories,
        products=vouchers + topups,
        balances={"USD": _D("5000.00"), "EUR": _D("2500.00"), "GBP": _D("800.00")},
        deposits=deposits,
    )
