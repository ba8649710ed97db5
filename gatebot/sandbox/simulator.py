"""The Gate API simulator as a pure state machine: catalog, balances, orders, deposits, faults. No HTTP.

:class:`Simulator` implements the contract of ``shared/gate-api.md`` (part 1 and every decision of
part 2) as plain method calls that return JSON-ready values (``dict``/``list``; product amounts as
``Decimal`` numbers, money as strings such as ``"12.50"``) and raise :class:`SandboxError` carrying
the HTTP status and error code the API answers with. :mod:`gatebot.sandbox.app` maps HTTP onto it;
in-process tests may call it directly.

Time comes from the injected :class:`~gatebot.clock.Clock`. A pending order becomes final once
``completion_delay`` seconds of *clock* time have passed since it was created; that is checked
lazily at the start of every operation (and by :meth:`Simulator.tick`), so a test on a
:class:`~gatebot.clock.ManualClock` controls completion without sleeping.

Randomness (order ids, vendor ids, voucher codes) comes from ``random.Random(seed)``; fault
decisions from a second generator derived from the same seed, so turning faults on does not change
ids or codes. Same seed + same calls ⇒ same answers.

:class:`Faults` are decided here (:meth:`Simulator.plan_request` returns a :class:`FaultPlan`) but
enacted by the app (sleeping, hanging, breaking the connection).

Thread-safe: the HTTP server may run in a background thread while a test pokes the simulator.

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from gatebot.clock import Clock, OffsetClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from gatebot.money import Money, MoneyError, parse_decimal
from gatebot.sandbox.catalog import ALWAYS_FAILS_PRODUCT_ID, Catalog, ProductSpec, default_catalog
from gatebot.sandbox.state import BalanceState, DepositState, OrderState, SandboxState

__all__ = [
    "CREATE_ORDER",
    "DEFAULT_PAGE_SIZE",
    "ENDPOINTS",
    "HEALTH",
    "MAX_PAGE_SIZE",
    "CreateResult",
    "FaultAction",
    "FaultPlan",
    "Faults",
    "SandboxConfig",
    "SandboxError",
    "Simulator",
    "iso",
    "parse_json",
    "to_json",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_QUANTITY = 100
MAX_EXTERNAL_REF = 64
MAX_IDEMPOTENCY_KEY = 255

#: Names of the Gate endpoints, used for fault planning and request statistics.
HEALTH = "health"
CREATE_ORDER = "create_order"
ENDPOINTS = (HEALTH, "product_types", "categories", "products", "product", "orders", CREATE_ORDER, "order",
             "balance", "deposits")

ORDER_STATUSES = ("pending", "completed", "failed")
DEPOSIT_STATUSES = ("pending", "posted", "rejected")

FaultAction = Literal["hang", "rate_limited", "garbage", "unavailable", "reset", "error_after_processing"]
FAULT_ACTIONS: tuple[FaultAction, ...] = ("hang", "rate_limited", "garbage", "unavailable", "reset",
                                          "error_after_processing")
_CREATE_COUNTERS = ("attempted", "created", "replayed", "conflicts", "rejected")

_VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read by people
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,19}")


# -- errors and configuration ------------------------------------------------------------------------------


class SandboxError(Exception):
    """An error answer: HTTP ``status``, contract error ``code`` (``validation_error``...) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def _invalid(message: str, code: str = "validation_error") -> SandboxError:
    return SandboxError(400, code, message)


_RATES = ("error_rate", "create_error_rate", "rate_limit_rate", "hang_rate")
_SECONDS = ("latency", "latency_jitter", "hang_seconds")
_COUNTS = ("rate_limit_burst", "hang_next", "garbage_next", "retry_after")


@dataclass
class Faults:
    """Misbehaviour to inject; mutable at run time (``PATCH /_sandbox/faults`` or plain assignment).

    Which requests each knob touches: ``latency``/``latency_jitter`` every Gate request including
    ``/health``; ``health_down`` only ``/health``; everything else only the business endpoints
    (``/agent/...``). Admin endpoints (``/_sandbox/...``) are never faulted. One request gets at
    most one fault, checked in this order: hang, rate limit, garbage, error.

    - ``error_rate``: fraction of business requests failing. Reads answer 503 ``unavailable``; a
      create is, in half of the cases, a *reset* (the order is created, then the response breaks
      off after its headers), in a quarter *processed-then-500*, and in a quarter a plain 503
      before anything happened. ``create_error_rate`` does the same for creates only.
    - ``rate_limit_burst``: the next N business requests answer 429 ``rate_limited`` with
      ``Retry-After: retry_after``; ``rate_limit_rate`` a random fraction does.
    - ``hang_next`` / ``hang_rate``: the request does not answer for ``hang_seconds`` (it gives up
      early when the client disconnects), so a client timeout fires.
    - ``garbage_next``: the next N business requests answer 200 with an HTML body (not processed).
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    error_rate: float = 0.0
    create_error_rate: float = 0.0
    rate_limit_burst: int = 0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    health_down: bool = False
    hang_rate: float = 0.0
    hang_next: int = 0
    hang_seconds: float = 3600.0
    garbage_next: int = 0

    def __post_init__(self) -> None:
        self.update(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update, all or nothing; :class:`ValueError` names the first bad knob."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        clean: dict[str, Any] = {name: _fault_value(name, value) for name, value in changes.items()}
        for name, value in clean.items():
            setattr(self, name, value)


def _fault_value(name: str, value: Any) -> float | int | bool:
    if name == "health_down":
        if not isinstance(value, bool):
            raise ValueError("health_down must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{name} must be a number")
    if name in _COUNTS:
        if value != int(value) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0")
        return int(value)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0")
    if name in _RATES and number > 1:
        raise ValueError(f"{name} is a fraction of requests: 0..1")
    return number


@dataclass
class SandboxConfig:
    """How a sandbox starts. ``fail_product_ids``: products whose orders always end ``failed``."""

    api_key: str = SANDBOX_API_KEY
    agent_id: uuid.UUID = SANDBOX_AGENT_ID
    seed: int = 42
    completion_delay: float = 5.0
    fail_product_ids: frozenset[int] = frozenset({ALWAYS_FAILS_PRODUCT_ID})
    faults: Faults = field(default_factory=Faults)
    catalog: Catalog = field(default_factory=default_catalog)

    def __post_init__(self) -> None:
        if not self.api_key or self.api_key != self.api_key.strip():
            raise ValueError("api_key must be a non-empty string without surrounding spaces")
        if not isinstance(self.agent_id, uuid.UUID):
            raise ValueError("agent_id must be a uuid.UUID")
        if not math.isfinite(self.completion_delay) or self.completion_delay < 0:
            raise ValueError("completion_delay must be a finite number of seconds >= 0")
        self.fail_product_ids = frozenset(self.fail_product_ids)


# -- JSON ----------------------------------------------------------------------------------------------------


def to_json(value: Any, *, sort_keys: bool = False) -> str:
    """Serialize JSON-ready data; ``Decimal`` becomes a JSON *number* (``10``, ``0.5``) without a float.

    The standard library cannot write a Decimal as a number without going through float, which is
    exactly what money must never do. Also the canonical form behind idempotency comparisons
    (``sort_keys=True``): numerically equal Decimals (``10`` and ``10.0``) encode the same.
    """
    out: list[str] = []
    _encode(value, out, sort_keys)
    return "".join(out)


def _encode(value: Any, out: list[str], sort_keys: bool) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode {value!r} as JSON")
        out.append(format(value.normalize(), "f"))
    elif isinstance(value, float):  # fault knobs (seconds, rates) only; never money
        if not math.isfinite(value):
            raise ValueError(f"cannot encode {value!r} as JSON")
        out.append(repr(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        items = sorted(value.items()) if sort_keys else list(value.items())
        out.append("{")
        for index, (key, item) in enumerate(items):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {key!r}")
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, out, sort_keys)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out, sort_keys)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes | str) -> Any:
    """Decode a request body: numbers with a fraction become ``Decimal``; NaN/Infinity are refused."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("the request body is not valid JSON") from None


def iso(moment: datetime | None) -> str | None:
    """``2024-11-01T10:00:00Z`` (UTC, whole seconds) or ``None``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- records -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the app must do to one request: wait ``delay`` seconds, then enact ``action`` (if any)."""

    delay: float = 0.0
    action: FaultAction | None = None
    hang_seconds: float = 0.0
    retry_after: int = 1

    @property
    def processes(self) -> bool:
        """Whether the request reaches the simulator at all (resets and 500s happen after processing)."""
        return self.action in (None, "reset", "error_after_processing")


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A create's answer: the order (current state) and whether it is new (201) or a replay (200)."""

    order: dict[str, Any]
    created: bool

    @property
    def status(self) -> int:
        return 201 if self.created else 200


@dataclass(slots=True)
class _Balance:
    available: Money
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {"currency_code": self.available.currency, "available": self.available.as_api(),
                "updated_at": iso(self.updated_at)}


@dataclass(slots=True)
class _Deposit:
    id: int
    amount: Money
    method: str
    status: str
    external_ref: str | None
    created_at: datetime
    posted_at: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "currency_code": self.amount.currency, "amount": self.amount.as_api(),
                "method": self.method, "status": self.status, "external_ref": self.external_ref,
                "created_at": iso(self.created_at), "posted_at": iso(self.posted_at)}


@dataclass(slots=True)
class _Order:
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


@dataclass(slots=True)
class _Stats:
    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "responses": {str(status): n for status, n in sorted(self.responses.items())},
            "creates": {name: self.creates[name] for name in _CREATE_COUNTERS},
            "faults": {name: self.faults[name] for name in FAULT_ACTIONS},
        }


@runtime_checkable
class _AdvanceableClock(Protocol):
    def advance(self, delta: timedelta) -> object: ...


# -- the simulator -------------------------------------------------------------------------------------------


class Simulator:
    """One agent's Gate account: the business operations, the admin operations, and fault planning."""

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or SandboxConfig()
        self.clock: Clock = clock or OffsetClock()
        #: The live fault knobs (a copy of ``config.faults``; ``reset()`` restores that).
        self.faults = dataclasses.replace(self.config.faults)
        self._lock = threading.RLock()
        self._seed_state()

    # -- state -------------------------------------------------------------------------------------------

    def _seed_state(self) -> None:
        now = self.clock.now()
        catalog = self.config.catalog
        self._rng = random.Random(self.config.seed)
        self._fault_rng = random.Random(f"gatebot-sandbox-faults/{self.config.seed}")
        self._orders: dict[str, _Order] = {}
        self._by_key: dict[str, _Order] = {}
        self._pending: dict[str, _Order] = {}
        self._seq = 0
        self._stats = _Stats()
        self._deposits: dict[int, _Deposit] = {}
        last_posting: dict[str, datetime] = {}
        for spec in catalog.deposits:
            created = now - spec.age
            posted = created + spec.posted_after if spec.status == "posted" else None
            amount = Money.parse(spec.amount, spec.currency_code)
            self._deposits[spec.id] = _Deposit(spec.id, amount, spec.method, spec.status, spec.external_ref,
                                               created, posted)
            if posted is not None:
                last_posting[spec.currency_code] = max(posted, last_posting.get(spec.currency_code, posted))
        self._balances: dict[str, _Balance] = {
            currency: _Balance(Money.parse(amount, currency), last_posting.get(currency, now))
            for currency, amount in catalog.balances.items()
        }

    def reset(self) -> None:
        """Back to the seeded state: opening balances, deposits, no orders, initial faults, fresh RNGs."""
        with self._lock:
            self.faults.update(self.config.faults.as_dict())
            self._seed_state()

    def snapshot(self) -> SandboxState:
        """The account as a :class:`~gatebot.sandbox.state.SandboxState` (to carry on in a later process)."""
        with self._lock:
            return SandboxState(
                seed=self.config.seed, saved_at=self.clock.now(),
                clock_offset=self.clock.offset if isinstance(self.clock, OffsetClock) else None,
                seq=self._seq, rng=self._rng.getstate(), fault_rng=self._fault_rng.getstate(),
                balances=[BalanceState(available=b.available, updated_at=b.updated_at)
                          for _, b in sorted(self._balances.items())],
                deposits=[DepositState(id=d.id, amount=d.amount, method=d.method, status=d.status,
                                       external_ref=d.external_ref, created_at=d.created_at, posted_at=d.posted_at)
                          for d in self._deposits.values()],
                orders=[OrderState(
                    seq=o.seq, id=o.id, product_id=o.product.id, idempotency_key=o.idempotency_key,
                    fingerprint=o.fingerprint, external_ref=o.external_ref, quantity=o.quantity,
                    is_test=o.is_test, charge=o.charge, plexy_margin=o.plexy_margin,
                    balance_before=o.balance_before, balance_after=o.balance_after, created_at=o.created_at,
                    due_at=o.due_at, order_content=o.order_content, deliverable=o.deliverable, status=o.status,
                    completed_at=o.completed_at, failed_at=o.failed_at, failure_reason=o.failure_reason,
                ) for o in self._newest_first()[::-1]],
            )

    def restore(self, state: SandboxState) -> None:
        """Become the account ``state`` describes (raises :class:`ValueError` for an unknown product)."""
        orders: list[_Order] = []
        for o in state.orders:
            product = self.config.catalog.product(o.product_id)
            if product is None:
                raise ValueError(f"the saved sandbox state has an order for unknown product {o.product_id}")
            orders.append(_Order(
                seq=o.seq, id=o.id, product=product, idempotency_key=o.idempotency_key,
                fingerprint=o.fingerprint, external_ref=o.external_ref, quantity=o.quantity, is_test=o.is_test,
                charge=o.charge, plexy_margin=o.plexy_margin, balance_before=o.balance_before,
                balance_after=o.balance_after, created_at=o.created_at, due_at=o.due_at,
                order_content=copy.deepcopy(o.order_content), deliverable=copy.deepcopy(o.deliverable),
                status=o.status, completed_at=o.completed_at, failed_at=o.failed_at,
                failure_reason=o.failure_reason))
        with self._lock:
            if state.clock_offset is not None and isinstance(self.clock, OffsetClock):
                self.clock.offset = state.clock_offset
            self._rng.setstate(state.rng)
            self._fault_rng.setstate(state.fault_rng)
            self._seq = state.seq
            self._orders = {o.id: o for o in orders}
            self._by_key = {o.idempotency_key: o for o in orders}
            self._pending = {o.id: o for o in orders if o.status == "pending"}
            self._balances = {b.available.currency: _Balance(b.available, b.updated_at) for b in state.balances}
            self._deposits = {d.id: _Deposit(d.id, d.amount, d.method, d.status, d.external_ref, d.created_at,
                                             d.posted_at) for d in state.deposits}

    def now(self) -> datetime:
        return self.clock.now()

    # -- auth --------------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, agent_id: str) -> None:
        """Raise 401 unless ``authorization`` is exactly the raw key and ``agent_id`` is its agent."""
        if not authorization:
            raise SandboxError(401, "unauthorized", "missing Authorization header (send the raw API key)")
        if authorization != self.config.api_key:
            scheme, _, rest = authorization.partition(" ")
            if scheme.lower() == "bearer" and rest.strip() == self.config.api_key:
                raise SandboxError(401, "unauthorized",
                                   "send the raw API key in the Authorization header, without 'Bearer'")
            raise SandboxError(401, "unauthorized", "unknown API key")
        try:
            same_agent = uuid.UUID(agent_id) == self.config.agent_id
        except ValueError:
            same_agent = False
        if not same_agent:
            raise SandboxError(401, "unauthorized", "this API key does not belong to that agent_id")

    # -- catalog -----------------------------------------------------------------------------------------

    def product_types(self) -> list[dict[str, Any]]:
        return [t.to_api() for t in self.config.catalog.product_types]

    def categories(self) -> list[dict[str, Any]]:
        return [c.to_api() for c in self.config.catalog.categories]

    def list_products(self, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE,
                      product_type_id: int | None = None, category_id: int | None = None,
                      is_active: bool | None = None) -> dict[str, Any]:
        items = [p for p in self.config.catalog.products
                 if (product_type_id is None or p.product_type_id == product_type_id)
                 and (category_id is None or p.category_id == category_id)
                 and (is_active is None or p.is_active == is_active)]
        return _page([p.to_api() for p in items], page, page_size)

    def get_product(self, product_id: int) -> dict[str, Any]:
        product = self.config.catalog.product(product_id)
        if product is None:
            raise SandboxError(404, "not_found", f"product {product_id} not found")
        return product.to_api()

    # -- orders ------------------------------------------------------------------------------------------

    def create_order(self, body: bytes | str | Mapping[str, Any], *,
                     idempotency_key: str | None) -> CreateResult:
        """``POST /orders``: validate, charge, record — or replay/refuse an earlier use of the key.

        ``body`` is the raw request body or an already-decoded object. The key is checked first
        (400 ``missing_idempotency_key``), then the body is compared with the key's first use:
        same JSON value ⇒ the original order (status 200), different ⇒ 409. Only an order that was
        actually created claims its key, so after an ``insufficient_balance`` rejection the same
        key and body can be sent again once a deposit has posted.
        """
        with self._lock:
            self._advance()
            self._stats.creates["attempted"] += 1
            try:
                key = _check_key(idempotency_key)
                data = parse_json(body) if isinstance(body, bytes | str) else body
                if not isinstance(data, Mapping):
                    raise _invalid("the request body must be a JSON object")
                fingerprint = to_json(data, sort_keys=True)
                existing = self._by_key.get(key)
                if existing is not None:
                    if existing.fingerprint != fingerprint:
                        self._stats.creates["conflicts"] += 1
                        raise SandboxError(409, "idempotency_conflict",
                                           "this Idempotency-Key was already used with a different body")
                    self._stats.creates["replayed"] += 1
                    return CreateResult(existing.to_api(), created=False)
                order = self._new_order(data, key, fingerprint)
            except SandboxError as exc:
                if exc.status == 400:
                    self._stats.creates["rejected"] += 1
                raise
            self._stats.creates["created"] += 1
            return CreateResult(order.to_api(), created=True)

    def _new_order(self, data: Mapping[str, Any], key: str, fingerprint: str) -> _Order:
        product_id = data.get("product_id")
        if isinstance(product_id, bool) or not isinstance(product_id, int):
            raise _invalid("product_id is required and must be an integer")
        product = self.config.catalog.product(product_id)
        if product is None:
            raise _invalid(f"product_id {product_id} does not exist")
        if not product.is_active:
            raise _invalid(f"product {product_id} is not active", "product_inactive")

        currency = data.get("currency_code")
        if currency is None:
            currency = product.currency_code
        elif not isinstance(currency, str):
            raise _invalid("currency_code must be a string such as USD")
        elif currency.strip().upper() != product.currency_code:
            raise _invalid(f"product {product_id} is sold in {product.currency_code}, not {currency}",
                           "currency_mismatch")
        currency = product.currency_code

        quantity = _optional(data, "quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise _invalid(f"quantity must be a whole number from 1 to {MAX_QUANTITY}")
        is_test = _optional(data, "test", False)
        if not isinstance(is_test, bool):
            raise _invalid("test must be true or false")
        external_ref = _check_external_ref(data.get("external_ref"))

        topup = data.get("topup_request")
        if product.is_topup:
            if quantity != 1:
                raise _invalid("a top-up has quantity 1")
            if not isinstance(topup, Mapping):
                raise _invalid("topup_request with an amount is required for top-up products")
            amount = _topup_amount(product, topup.get("amount"))
            _check_account(product, topup.get("customer_account"))
            charge = Money.rounded(amount.amount * (1 + product.margin), currency)
            margin = charge - amount
        else:
            if topup is not None:
                raise _invalid("topup_request is only for top-up products")
            charge = Money.parse(product.price, currency).times(quantity)
            margin = Money.zero(currency)

        balance = self._balances.get(currency)
        available = balance.available if balance is not None else Money.zero(currency)
        if available < charge:
            raise _invalid(f"available {available.format()} is less than the charge {charge.format()}",
                           "insufficient_balance")

        now = self.clock.now()
        after = available - charge
        self._balances[currency] = _Balance(after, now)
        self._seq += 1
        order_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        content: dict[str, Any] | None
        deliverable: dict[str, Any]
        if product.is_topup:
            vendor = {"vendor_order_id": f"LC-{self._rng.randint(100000, 999999)}"}
            content, deliverable = vendor, dict(vendor)
        else:
            vouchers = [self._voucher(test=is_test) for _ in range(quantity)]
            content, deliverable = None, {**vouchers[0], "vouchers": vouchers}
        order = _Order(
            seq=self._seq, id=order_id, product=product, idempotency_key=key, fingerprint=fingerprint,
            external_ref=external_ref, quantity=quantity, is_test=is_test, charge=charge, plexy_margin=margin,
            balance_before=available, balance_after=after, created_at=now,
            due_at=now + timedelta(seconds=self.config.completion_delay),
            order_content=content, deliverable=deliverable,
        )
        self._orders[order.id] = order
        self._by_key[key] = order
        self._pending[order.id] = order
        self._advance()  # a zero completion_delay completes at once
        return order

    def _voucher(self, *, test: bool) -> dict[str, str]:
        groups = ["".join(self._rng.choice(_VOUCHER_ALPHABET) for _ in range(4)) for _ in range(3)]
        if test:
            groups[0] = "TEST"
        return {"voucher_code": "-".join(groups), "pin": f"{self._rng.randint(0, 9999):04d}"}

    def get_order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            order = self._orders.get(order_id)
            if order is None:
                raise SandboxError(404, "not_found", "order not found")
            return order.to_api()

    def list_orders(self, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE, status: str | None = None,
                    product_id: int | None = None) -> dict[str, Any]:
        if status is not None and status not in ORDER_STATUSES:
            raise _invalid(f"status must be one of {', '.join(ORDER_STATUSES)}")
        with self._lock:
            self._advance()
            items = [o.to_api() for o in self._newest_first()
                     if (status is None or o.status == status)
                     and (product_id is None or o.product.id == product_id)]
        return _page(items, page, page_size)

    def _newest_first(self) -> list[_Order]:
        return sorted(self._orders.values(), key=lambda o: o.seq, reverse=True)

    def tick(self) -> int:
        """Finalize every pending order whose delay has elapsed; returns how many changed."""
        with self._lock:
            return self._advance()

    def _advance(self) -> int:
        now = self.clock.now()
        due = sorted((o for o in self._pending.values() if o.due_at <= now), key=lambda o: (o.due_at, o.seq))
        for order in due:
            self._finish(order, fail=order.product.id in self.config.fail_product_ids, at=order.due_at)
        return len(due)

    def _finish(self, order: _Order, *, fail: bool, at: datetime, reason: str | None = None) -> None:
        del self._pending[order.id]
        if fail:
            order.status = "failed"
            order.failed_at = at
            order.failure_reason = reason or "the vendor declined the order (sandbox)"
            balance = self._balances[order.charge.currency]
            self._balances[order.charge.currency] = _Balance(balance.available + order.charge,
                                                             max(balance.updated_at, at))
        else:
            order.status = "completed"
            order.completed_at = at
            order.order_content = order.deliverable

    def finish_order(self, order_id: str, *, fail: bool = False, reason: str | None = None) -> dict[str, Any]:
        """Admin: end a pending order now, completed or failed, regardless of its delay."""
        with self._lock:
            self._advance()
            order = self._orders.get(order_id)
            if order is None:
                raise SandboxError(404, "not_found", "order not found")
            if order.status != "pending":
                raise SandboxError(409, "invalid_state", f"order is already {order.status}")
            self._finish(order, fail=fail, at=self.clock.now(), reason=reason)
            return order.to_api()

    def all_orders(self) -> list[dict[str, Any]]:
        """Admin: every order, newest first (with idempotency keys, for "one order per intent" checks)."""
        with self._lock:
            self._advance()
            return [o.to_api() for o in self._newest_first()]

    # -- money -------------------------------------------------------------------------------------------

    def balance(self) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return {"items": [self._balances[c].to_api() for c in sorted(self._balances)]}

    def set_balance(self, currency_code: Any, available: Any) -> dict[str, Any]:
        """Admin: overwrite ``available`` for one currency (created if new)."""
        money = _admin_money(currency_code, available, allow_zero=True)
        with self._lock:
            self._advance()
            self._balances[money.currency] = _Balance(money, self.clock.now())
            return self._balances[money.currency].to_api()

    def list_deposits(self, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE,
                      status: str | None = None) -> dict[str, Any]:
        if status is not None and status not in DEPOSIT_STATUSES:
            raise _invalid(f"status must be one of {', '.join(DEPOSIT_STATUSES)}")
        with self._lock:
            self._advance()
            deposits = sorted(self._deposits.values(), key=lambda d: (d.created_at, d.id), reverse=True)
            items = [d.to_api() for d in deposits if status is None or d.status == status]
        return _page(items, page, page_size)

    def add_deposit(self, currency_code: Any, amount: Any, *, status: Any = "posted", method: Any = "manual",
                    external_ref: Any = None) -> dict[str, Any]:
        """Admin: record a deposit; a ``posted`` one adds to ``available`` at once."""
        money = _admin_money(currency_code, amount, allow_zero=False)
        if status not in ("posted", "pending"):
            raise _invalid("status must be posted or pending")
        if method not in ("bank_wire", "manual"):
            raise _invalid("method must be bank_wire or manual")
        ref = _check_external_ref(external_ref)
        with self._lock:
            self._advance()
            deposit = _Deposit(max(self._deposits, default=0) + 1, money, method, "pending", ref,
                               self.clock.now())
            self._deposits[deposit.id] = deposit
            if status == "posted":
                self._post(deposit)
            return deposit.to_api()

    def post_deposit(self, deposit_id: int) -> dict[str, Any]:
        """Admin: a pending deposit posts now and adds to ``available``."""
        with self._lock:
            self._advance()
            deposit = self._pending_deposit(deposit_id)
            self._post(deposit)
            return deposit.to_api()

    def reject_deposit(self, deposit_id: int) -> dict[str, Any]:
        """Admin: a pending deposit is rejected (``available`` unchanged)."""
        with self._lock:
            self._advance()
            deposit = self._pending_deposit(deposit_id)
            deposit.status = "rejected"
            return deposit.to_api()

    def _pending_deposit(self, deposit_id: int) -> _Deposit:
        deposit = self._deposits.get(deposit_id)
        if deposit is None:
            raise SandboxError(404, "not_found", f"deposit {deposit_id} not found")
        if deposit.status != "pending":
            raise SandboxError(409, "invalid_state", f"deposit {deposit_id} is already {deposit.status}")
        return deposit

    def _post(self, deposit: _Deposit) -> None:
        now = self.clock.now()
        deposit.status = "posted"
        deposit.posted_at = now
        currency = deposit.amount.currency
        balance = self._balances.get(currency)
        available = balance.available if balance is not None else Money.zero(currency)
        self._balances[currency] = _Balance(available + deposit.amount, now)

    # -- health, time, faults, stats ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"}``, or ``{"status": "degraded", ...}`` while ``faults.health_down``."""
        if self.faults.health_down:
            return {"status": "degraded", "reason": "health_down fault is on (sandbox)"}
        return {"status": "ok"}

    def advance_time(self, seconds: Any) -> datetime:
        """Admin: move the clock forward (OffsetClock/ManualClock only) and finalize what became due."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float | Decimal) \
                or not math.isfinite(seconds) or seconds < 0:
            raise _invalid("advance must be a number of seconds >= 0")
        if not isinstance(self.clock, _AdvanceableClock):
            raise SandboxError(409, "invalid_state", "this sandbox runs on a clock that cannot be advanced")
        with self._lock:
            self.clock.advance(timedelta(seconds=float(seconds)))
            self._advance()
            return self.clock.now()

    def update_faults(self, changes: Any) -> dict[str, Any]:
        """Admin: partial update of the fault knobs (400 ``validation_error`` naming a bad knob)."""
        if not isinstance(changes, Mapping):
            raise _invalid("expected a JSON object of fault knobs")
        with self._lock:
            try:
                self.faults.update(changes)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
            return self.faults.as_dict()

    def plan_request(self, endpoint: str) -> FaultPlan:
        """Decide (deterministically, from the fault RNG) how the app should misbehave for one request."""
        with self._lock:
            f = self.faults
            delay = f.latency
            if f.latency_jitter > 0:
                delay += self._fault_rng.uniform(0, f.latency_jitter)
            action = None if endpoint == HEALTH else self._draw_action(endpoint == CREATE_ORDER)
            if action is not None:
                self._stats.faults[action] += 1
            return FaultPlan(delay=delay, action=action, hang_seconds=f.hang_seconds,
                             retry_after=f.retry_after)

    def _draw_action(self, is_create: bool) -> FaultAction | None:
        f, rng = self.faults, self._fault_rng
        if f.hang_next > 0:
            f.hang_next -= 1
            return "hang"
        if f.hang_rate > 0 and rng.random() < f.hang_rate:
            return "hang"
        if f.rate_limit_burst > 0:
            f.rate_limit_burst -= 1
            return "rate_limited"
        if f.rate_limit_rate > 0 and rng.random() < f.rate_limit_rate:
            return "rate_limited"
        if f.garbage_next > 0:
            f.garbage_next -= 1
            return "garbage"
        rates = (f.error_rate, f.create_error_rate) if is_create else (f.error_rate,)
        for rate in rates:
            if rate > 0 and rng.random() < rate:
                if not is_create:
                    return "unavailable"
                split = rng.random()
                return "reset" if split < 0.5 else "error_after_processing" if split < 0.75 else "unavailable"
        return None

    def count_request(self, endpoint: str) -> None:
        with self._lock:
            self._stats.requests[endpoint] += 1

    def count_response(self, status: int) -> None:
        with self._lock:
            self._stats.responses[status] += 1

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, responses per status, create outcomes and injected faults.

        ``creates.attempted`` counts creates that reached the order book: a 429, garbage, hang or
        plain 503 answered before processing is a request but not an attempt.
        """
        with self._lock:
            return self._stats.as_dict()


# -- helpers -------------------------------------------------------------------------------------------------


def _page(items: list[dict[str, Any]], page: int, page_size: int) -> dict[str, Any]:
    """The paginated envelope; ``pageSize`` above the maximum is clamped (and echoed clamped)."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise _invalid("page must be a whole number >= 1")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise _invalid("pageSize must be a whole number >= 1")
    size = min(page_size, MAX_PAGE_SIZE)
    start = (page - 1) * size
    return {"items": items[start:start + size], "page": page, "pageSize": size, "total": len(items)}


def _optional(data: Mapping[str, Any], name: str, default: Any) -> Any:
    value = data.get(name)
    return default if value is None else value


def _check_external_ref(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_EXTERNAL_REF):
        raise _invalid(f"external_ref must be a string of at most {MAX_EXTERNAL_REF} characters")
    return value


def _check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise _invalid("the Idempotency-Key header is required to create an order", "missing_idempotency_key")
    if len(key) > MAX_IDEMPOTENCY_KEY or not all(" " < ch <= "~" for ch in key):
        raise _invalid(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return key


def _topup_amount(product: ProductSpec, raw: Any) -> Money:
    if not isinstance(raw, str):
        raise _invalid('topup_request.amount is required, as a string such as "10.00"')
    try:
        parse_decimal(raw, what="topup_request.amount")
    except MoneyError:
        raise _invalid('topup_request.amount must be a number written as a string, such as "10.00"') from None
    assert product.min_amount is not None and product.max_amount is not None and product.step is not None
    rule = (f"between {product.min_amount.normalize():f} and {product.max_amount.normalize():f} "
            f"{product.currency_code} in steps of {product.step.normalize():f}")
    try:
        amount = Money.parse(raw, product.currency_code)
    except MoneyError:
        raise _invalid(f"the amount must be {rule}", "invalid_amount") from None
    if not product.min_amount <= amount.amount <= product.max_amount or amount.amount % product.step != 0:
        raise _invalid(f"the amount must be {rule}", "invalid_amount")
    return amount


def _check_account(product: ProductSpec, account: Any) -> None:
    """Validate ``customer_account`` against the published fields. Messages never echo the values."""
    if account is None:
        account = {}
    if not isinstance(account, Mapping) or not all(isinstance(v, str) for v in account.values()):
        raise _invalid("topup_request.customer_account must be an object of strings")
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
        raise _invalid("customer_account: " + "; ".join(problems))


def _admin_money(currency_code: Any, amount: Any, *, allow_zero: bool) -> Money:
    if not isinstance(currency_code, str):
        raise _invalid("currency_code must be a 3-letter code such as USD")
    if isinstance(amount, float):
        raise _invalid('amounts are strings such as "500.00"')
    try:
        money = Money.parse(amount, currency_code)
    except MoneyError as exc:
        raise _invalid(str(exc)) from None
    if money.is_negative() or (not allow_zero and money.amount == 0):
        raise _invalid("the amount must be positive" if not allow_zero else "the amount must not be negative")
    return money
