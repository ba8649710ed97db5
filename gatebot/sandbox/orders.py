"""The sandbox's order book: creating orders (validation, charge, idempotency), finishing them, listing them.

:class:`OrderBook` holds the orders and their idempotency keys; it charges and refunds through the
:class:`~gatebot.sandbox.ledger.Ledger` and draws order ids, vendor ids and voucher codes from the
simulator's seeded RNG. No locking: the :class:`~gatebot.sandbox.simulator.Simulator` holds the lock.

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from gatebot.money import Money, MoneyError, parse_decimal
from gatebot.sandbox.catalog import Catalog, ProductSpec
from gatebot.sandbox.contract import ORDER_STATUSES, SandboxError, check_external_ref, invalid
from gatebot.sandbox.jsonio import iso
from gatebot.sandbox.ledger import Ledger
from gatebot.sandbox.state import OrderState

__all__ = ["MAX_IDEMPOTENCY_KEY", "MAX_QUANTITY", "Order", "OrderBook", "OrderSettings", "check_key"]

MAX_QUANTITY = 100
MAX_IDEMPOTENCY_KEY = 255

_VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read by people
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,19}")


@dataclass(slots=True)
class Order:
    seq: int
    id: str
    product: ProductSpec
    idempotency_key: str
    fingerprint: str
    external_ref: str | None
    quantity: int
    is_test: bool
    charge: Money
    plexy_margin: Money
    balance_before: Money
    balance_after: Money
    created_at: datetime
    due_at: datetime
    order_content: dict[str, Any] | None
    #: What completion reveals (voucher codes); kept apart so a pending order does not show it.
    deliverable: dict[str, Any] | None
    status: str = "pending"
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    failure_reason: str | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "product_id": self.product.id,
            "external_ref": self.external_ref,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "order_content": copy.deepcopy(self.order_content),
            "currency_code": self.charge.currency,
            "charged_amount": self.charge.as_api(),
            "agent_charge": self.charge.as_api(),
            "plexy_margin": self.plexy_margin.as_api(),
            "balance_before": self.balance_before.as_api(),
            "balance_after": self.balance_after.as_api(),
            "quantity": self.quantity,
            "is_test": self.is_test,
            "region_code": self.product.region_code,
            "created_at": iso(self.created_at),
            "completed_at": iso(self.completed_at),
            "failed_at": iso(self.failed_at),
        }
        if self.failure_reason is not None:
            data["failure_reason"] = self.failure_reason
        return data

    def to_state(self) -> OrderState:
        return OrderState(
            seq=self.seq, id=self.id, product_id=self.product.id, idempotency_key=self.idempotency_key,
            fingerprint=self.fingerprint, external_ref=self.external_ref, quantity=self.quantity,
            is_test=self.is_test, charge=self.charge, plexy_margin=self.plexy_margin,
            balance_before=self.balance_before, balance_after=self.balance_after, created_at=self.created_at,
            due_at=self.due_at, order_content=self.order_content, deliverable=self.deliverable,
            status=self.status, completed_at=self.completed_at, failed_at=self.failed_at,
            failure_reason=self.failure_reason,
        )

    @classmethod
    def from_state(cls, o: OrderState, catalog: Catalog) -> Order:
        """The order ``o`` describes (``ValueError`` when its product is not in ``catalog``)."""
        product = catalog.product(o.product_id)
        if product is None:
            raise ValueError(f"the saved sandbox state has an order for unknown product {o.product_id}")
        return cls(
            seq=o.seq, id=o.id, product=product, idempotency_key=o.idempotency_key,
            fingerprint=o.fingerprint, external_ref=o.external_ref, quantity=o.quantity, is_test=o.is_test,
            charge=o.charge, plexy_margin=o.plexy_margin, balance_before=o.balance_before,
            balance_after=o.balance_after, created_at=o.created_at, due_at=o.due_at,
            order_content=copy.deepcopy(o.order_content), deliverable=copy.deepcopy(o.deliverable),
            status=o.status, completed_at=o.completed_at, failed_at=o.failed_at,
            failure_reason=o.failure_reason)


class OrderSettings(Protocol):
    """What the order book reads from :class:`~gatebot.sandbox.simulator.SandboxConfig`."""

    catalog: Catalog
    completion_delay: float
    fail_product_ids: frozenset[int]


class OrderBook:
    """Every order of one agent, by id and by idempotency key; the pending ones finish when due."""

    def __init__(self, config: OrderSettings, *, ledger: Ledger, rng: random.Random,
                 orders: list[Order] | None = None, seq: int = 0) -> None:
        self.config = config  # read at each use: tests and admins change it while the sandbox runs
        self.ledger = ledger
        self.rng = rng
        self.seq = seq
        orders = orders or []
        self.orders: dict[str, Order] = {o.id: o for o in orders}
        self.by_key: dict[str, Order] = {o.idempotency_key: o for o in orders}
        self.pending: dict[str, Order] = {o.id: o for o in orders if o.status == "pending"}

    def get(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise SandboxError(404, "not_found", "order not found")
        return order

    def newest_first(self) -> list[Order]:
        return sorted(self.orders.values(), key=lambda o: o.seq, reverse=True)

    def listed(self, status: str | None, product_id: int | None) -> list[dict[str, Any]]:
        if status is not None and status not in ORDER_STATUSES:
            raise invalid(f"status must be one of {', '.join(ORDER_STATUSES)}")
        return [o.to_api() for o in self.newest_first()
                if (status is None or o.status == status) and (product_id is None or o.product.id == product_id)]

    def advance(self, now: datetime) -> int:
        """Finalize every pending order due by ``now``; returns how many changed."""
        due = sorted((o for o in self.pending.values() if o.due_at <= now), key=lambda o: (o.due_at, o.seq))
        for order in due:
            self.finish(order, fail=order.product.id in self.config.fail_product_ids, at=order.due_at)
        return len(due)

    def finish(self, order: Order, *, fail: bool, at: datetime, reason: str | None = None) -> None:
        del self.pending[order.id]
        if fail:
            order.status = "failed"
            order.failed_at = at
            order.failure_reason = reason or "the vendor declined the order (sandbox)"
            self.ledger.refund(order.charge, at)
        else:
            order.status = "completed"
            order.completed_at = at
            order.order_content = order.deliverable

    def create(self, data: Mapping[str, Any], key: str, fingerprint: str, now: datetime) -> Order:
        """Validate ``data``, charge the balance and record a pending order claiming ``key``."""
        request = _Request.of(self.config.catalog, data)
        product, quantity = request.product, request.quantity
        charge, margin = request.price()
        available = self.ledger.available(charge.currency)
        if available < charge:
            raise invalid(f"available {available.format()} is less than the charge {charge.format()}",
                          "insufficient_balance")
        after = available - charge
        self.ledger.set(after, now)
        self.seq += 1
        order_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        content: dict[str, Any] | None
        deliverable: dict[str, Any]
        if product.is_topup:
            vendor = {"vendor_order_id": f"LC-{self.rng.randint(100000, 999999)}"}
            content, deliverable = vendor, dict(vendor)
        else:
            vouchers = [self._voucher(test=request.is_test) for _ in range(quantity)]
            content, deliverable = None, {**vouchers[0], "vouchers": vouchers}
        order = Order(
            seq=self.seq, id=order_id, product=product, idempotency_key=key, fingerprint=fingerprint,
            external_ref=request.external_ref, quantity=quantity, is_test=request.is_test, charge=charge,
            plexy_margin=margin, balance_before=available, balance_after=after, created_at=now,
            due_at=now + timedelta(seconds=self.config.completion_delay),
            order_content=content, deliverable=deliverable,
        )
        self.orders[order.id] = order
        self.by_key[key] = order
        self.pending[order.id] = order
        self.advance(now)  # a zero completion_delay completes at once
        return order

    def _voucher(self, *, test: bool) -> dict[str, str]:
        groups = ["".join(self.rng.choice(_VOUCHER_ALPHABET) for _ in range(4)) for _ in range(3)]
        if test:
            groups[0] = "TEST"
        return {"voucher_code": "-".join(groups), "pin": f"{self.rng.randint(0, 9999):04d}"}


@dataclass(frozen=True, slots=True)
class _Request:
    """A create-order body, checked against the catalog (the top-up part is checked by :meth:`price`)."""

    product: ProductSpec
    quantity: int
    is_test: bool
    external_ref: str | None
    topup: Any

    @classmethod
    def of(cls, catalog: Catalog, data: Mapping[str, Any]) -> _Request:
        product_id = data.get("product_id")
        if isinstance(product_id, bool) or not isinstance(product_id, int):
            raise invalid("product_id is required and must be an integer")
        product = catalog.product(product_id)
        if product is None:
            raise invalid(f"product_id {product_id} does not exist")
        if not product.is_active:
            raise invalid(f"product {product_id} is not active", "product_inactive")
        currency = data.get("currency_code")
        if currency is not None and not isinstance(currency, str):
            raise invalid("currency_code must be a string such as USD")
        if currency is not None and currency.strip().upper() != product.currency_code:
            raise invalid(f"product {product_id} is sold in {product.currency_code}, not {currency}",
                          "currency_mismatch")
        quantity = _optional(data, "quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise invalid(f"quantity must be a whole number from 1 to {MAX_QUANTITY}")
        is_test = _optional(data, "test", False)
        if not isinstance(is_test, bool):
            raise invalid("test must be true or false")
        external_ref = check_external_ref(data.get("external_ref"))
        return cls(product, quantity, is_test, external_ref, data.get("topup_request"))

    def price(self) -> tuple[Money, Money]:
        """``(charge, plexy_margin)`` in the product's currency."""
        product, topup, currency = self.product, self.topup, self.product.currency_code
        if product.is_topup:
            if self.quantity != 1:
                raise invalid("a top-up has quantity 1")
            if not isinstance(topup, Mapping):
                raise invalid("topup_request with an amount is required for top-up products")
            amount = _topup_amount(product, topup.get("amount"))
            _check_account(product, topup.get("customer_account"))
            charge = Money.rounded(amount.amount * (1 + product.margin), currency)
            return charge, charge - amount
        if topup is not None:
            raise invalid("topup_request is only for top-up products")
        return Money.parse(product.price, currency).times(self.quantity), Money.zero(currency)


def _optional(data: Mapping[str, Any], name: str, default: Any) -> Any:
    value = data.get(name)
    return default if value is None else value


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise invalid("the Idempotency-Key header is required to create an order", "missing_idempotency_key")
    if len(key) > MAX_IDEMPOTENCY_KEY or not all(" " < ch <= "~" for ch in key):
        raise invalid(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return key


def _topup_amount(product: ProductSpec, raw: Any) -> Money:
    if not isinstance(raw, str):
        raise invalid('topup_request.amount is required, as a string such as "10.00"')
    try:
        parse_decimal(raw, what="topup_request.amount")
    except MoneyError:
        raise invalid('topup_request.amount must be a number written as a string, such as "10.00"') from None
    assert product.min_amount is not None and product.max_amount is not None and product.step is not None
    rule = (f"between {product.min_amount.normalize():f} and {product.max_amount.normalize():f} "
            f"{product.currency_code} in steps of {product.step.normalize():f}")
    try:
        amount = Money.parse(raw, product.currency_code)
    except MoneyError:
        raise invalid(f"the amount must be {rule}", "invalid_amount") from None
    if not product.min_amount <= amount.amount <= product.max_amount or amount.amount % product.step != 0:
        raise invalid(f"the amount must be {rule}", "invalid_amount")
    return amount


def _check_account(product: ProductSpec, account: Any) -> None:
    """Validate ``customer_account`` against the published fields. Messages never echo the values."""
    if account is None:
        account = {}
    if not isinstance(account, Mapping) or not all(isinstance(v, str) for v in account.values()):
        raise invalid("topup_request.customer_account must be an object of strings")
    if product.account_fields is None:
        return
    problems: list[str] = []
    for spec in product.account_fields:
        value = str(account.get(spec.name, "")).strip()
        if not value:
            if spec.required:
                problems.append(f"{spec.name} is required")
        elif spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            problems.append(f"{spec.name} does not match the pattern {spec.pattern}")
        elif spec.type == "email" and not _EMAIL.fullmatch(value):
            problems.append(f"{spec.name} is not an email address")
        elif spec.type == "phone" and not _PHONE.fullmatch(value):
            problems.append(f"{spec.name} is not a phone number")
    if problems:
        raise invalid("customer_account: " + "; ".join(problems))
