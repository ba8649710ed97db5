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

This module is the facade and the lock; the parts live beside it: :mod:`~gatebot.sandbox.orders`
(the order book), :mod:`~gatebot.sandbox.ledger` (balances, deposits), :mod:`~gatebot.sandbox.faults`
(fault knobs, plans, statistics), :mod:`~gatebot.sandbox.contract` (errors, limits, pagination) and
:mod:`~gatebot.sandbox.jsonio` (JSON). Their public names are re-exported here.

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from gatebot.clock import Clock, OffsetClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from gatebot.sandbox.catalog import ALWAYS_FAILS_PRODUCT_ID, Catalog, default_catalog
from gatebot.sandbox.contract import (
    CREATE_ORDER,
    DEFAULT_PAGE_SIZE,
    ENDPOINTS,
    HEALTH,
    MAX_PAGE_SIZE,
    SandboxError,
    invalid,
)
from gatebot.sandbox.contract import page as _page
from gatebot.sandbox.faults import FAULT_ACTIONS, FaultAction, FaultPlan, Faults, Stats, draw_action
from gatebot.sandbox.jsonio import iso, parse_json, to_json
from gatebot.sandbox.ledger import Ledger, admin_money
from gatebot.sandbox.orders import Order, OrderBook, check_key
from gatebot.sandbox.state import SandboxState

__all__ = [
    "CREATE_ORDER",
    "DEFAULT_PAGE_SIZE",
    "ENDPOINTS",
    "FAULT_ACTIONS",
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


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A create's answer: the order (current state) and whether it is new (201) or a replay (200)."""

    order: dict[str, Any]
    created: bool

    @property
    def status(self) -> int:
        return 201 if self.created else 200


@runtime_checkable
class _AdvanceableClock(Protocol):
    def advance(self, delta: timedelta) -> object: ...


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

    def _book(self, ledger: Ledger, orders: list[Order] | None = None, seq: int = 0) -> OrderBook:
        return OrderBook(self.config, ledger=ledger, rng=self._rng, orders=orders, seq=seq)

    def _seed_state(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._fault_rng = random.Random(f"gatebot-sandbox-faults/{self.config.seed}")
        self._stats = Stats()
        self._ledger = Ledger.seeded(self.config.catalog, self.clock.now())
        self._orders = self._book(self._ledger)

    def reset(self) -> None:
        """Back to the seeded state: opening balances, deposits, no orders, initial faults, fresh RNGs."""
        with self._lock:
            self.faults.update(self.config.faults.as_dict())
            self._seed_state()

    def snapshot(self) -> SandboxState:
        """The account as a :class:`~gatebot.sandbox.state.SandboxState` (to carry on in a later process)."""
        with self._lock:
            balances, deposits = self._ledger.snapshot()
            return SandboxState(
                seed=self.config.seed, saved_at=self.clock.now(),
                clock_offset=self.clock.offset if isinstance(self.clock, OffsetClock) else None,
                seq=self._orders.seq, rng=self._rng.getstate(), fault_rng=self._fault_rng.getstate(),
                balances=balances, deposits=deposits,
                orders=[o.to_state() for o in self._orders.newest_first()[::-1]],
            )

    def restore(self, state: SandboxState) -> None:
        """Become the account ``state`` describes (raises :class:`ValueError` for an unknown product)."""
        orders = [Order.from_state(o, self.config.catalog) for o in state.orders]
        with self._lock:
            if state.clock_offset is not None and isinstance(self.clock, OffsetClock):
                self.clock.offset = state.clock_offset
            self._rng.setstate(state.rng)
            self._fault_rng.setstate(state.fault_rng)
            self._ledger = Ledger.restored(state.balances, state.deposits)
            self._orders = self._book(self._ledger, orders, state.seq)

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
            creates = self._stats.creates
            creates["attempted"] += 1
            try:
                key = check_key(idempotency_key)
                data = parse_json(body) if isinstance(body, bytes | str) else body
                if not isinstance(data, Mapping):
                    raise invalid("the request body must be a JSON object")
                fingerprint = to_json(data, sort_keys=True)
                existing = self._orders.by_key.get(key)
                if existing is not None:
                    if existing.fingerprint != fingerprint:
                        creates["conflicts"] += 1
                        raise SandboxError(409, "idempotency_conflict",
                                           "this Idempotency-Key was already used with a different body")
                    creates["replayed"] += 1
                    return CreateResult(existing.to_api(), created=False)
                order = self._orders.create(data, key, fingerprint, self.clock.now())
            except SandboxError as exc:
                if exc.status == 400:
                    creates["rejected"] += 1
                raise
            creates["created"] += 1
            return CreateResult(order.to_api(), created=True)

    def get_order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self._orders.get(order_id).to_api()

    def list_orders(self, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE, status: str | None = None,
                    product_id: int | None = None) -> dict[str, Any]:
        with self._lock:
            self._advance()
            items = self._orders.listed(status, product_id)
        return _page(items, page, page_size)

    def tick(self) -> int:
        """Finalize every pending order whose delay has elapsed; returns how many changed."""
        with self._lock:
            return self._advance()

    def _advance(self) -> int:
        return self._orders.advance(self.clock.now())

    def finish_order(self, order_id: str, *, fail: bool = False, reason: str | None = None) -> dict[str, Any]:
        """Admin: end a pending order now, completed or failed, regardless of its delay."""
        with self._lock:
            self._advance()
            order = self._orders.get(order_id)
            if order.status != "pending":
                raise SandboxError(409, "invalid_state", f"order is already {order.status}")
            self._orders.finish(order, fail=fail, at=self.clock.now(), reason=reason)
            return order.to_api()

    def all_orders(self) -> list[dict[str, Any]]:
        """Admin: every order, newest first (with idempotency keys, for "one order per intent" checks)."""
        with self._lock:
            self._advance()
            return [o.to_api() for o in self._orders.newest_first()]

    # -- money -------------------------------------------------------------------------------------------

    def balance(self) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self._ledger.balance()

    def set_balance(self, currency_code: Any, available: Any) -> dict[str, Any]:
        """Admin: overwrite ``available`` for one currency (created if new)."""
        money = admin_money(currency_code, available, allow_zero=True)
        with self._lock:
            self._advance()
            return self._ledger.set(money, self.clock.now())

    def list_deposits(self, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE,
                      status: str | None = None) -> dict[str, Any]:
        with self._lock:
            self._advance()
            items = self._ledger.list_deposits(status)
        return _page(items, page, page_size)

    def add_deposit(self, currency_code: Any, amount: Any, *, status: Any = "posted", method: Any = "manual",
                    external_ref: Any = None) -> dict[str, Any]:
        """Admin: record a deposit; a ``posted`` one adds to ``available`` at once."""
        money = admin_money(currency_code, amount, allow_zero=False)
        with self._lock:
            self._advance()
            return self._ledger.add_deposit(money, status=status, method=method, external_ref=external_ref,
                                            now=self.clock.now())

    def post_deposit(self, deposit_id: int) -> dict[str, Any]:
        """Admin: a pending deposit posts now and adds to ``available``."""
        with self._lock:
            self._advance()
            deposit = self._ledger.pending_deposit(deposit_id)
            self._ledger.post(deposit, self.clock.now())
            return deposit.to_api()

    def reject_deposit(self, deposit_id: int) -> dict[str, Any]:
        """Admin: a pending deposit is rejected (``available`` unchanged)."""
        with self._lock:
            self._advance()
            deposit = self._ledger.pending_deposit(deposit_id)
            deposit.status = "rejected"
            return deposit.to_api()

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
            raise invalid("advance must be a number of seconds >= 0")
        if not isinstance(self.clock, _AdvanceableClock):
            raise SandboxError(409, "invalid_state", "this sandbox runs on a clock that cannot be advanced")
        with self._lock:
            self.clock.advance(timedelta(seconds=float(seconds)))
            self._advance()
            return self.clock.now()

    def update_faults(self, changes: Any) -> dict[str, Any]:
        """Admin: partial update of the fault knobs (400 ``validation_error`` naming a bad knob)."""
        if not isinstance(changes, Mapping):
            raise invalid("expected a JSON object of fault knobs")
        with self._lock:
            try:
                self.faults.update(changes)
            except ValueError as exc:
                raise invalid(str(exc)) from None
            return self.faults.as_dict()

    def plan_request(self, endpoint: str) -> FaultPlan:
        """Decide (deterministically, from the fault RNG) how the app should misbehave for one request."""
        with self._lock:
            f = self.faults
            delay = f.latency
            if f.latency_jitter > 0:
                delay += self._fault_rng.uniform(0, f.latency_jitter)
            action = None if endpoint == HEALTH else draw_action(f, self._fault_rng,
                                                                  is_create=endpoint == CREATE_ORDER)
            if action is not None:
                self._stats.faults[action] += 1
            return FaultPlan(delay=delay, action=action, hang_seconds=f.hang_seconds,
                             retry_after=f.retry_after)

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
