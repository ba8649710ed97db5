"""The order pipeline: validate → pre-check balance → persist intent → submit → track → recover.

The one rule that keeps money safe: the intent (idempotency key, external_ref, full request body) is
committed to the store **before** the first request leaves, and every later attempt for that intent
sends the same key and the same body. A crash, timeout or 5xx therefore leaves an order in
``submitting``/``unknown`` that :meth:`OrderService.recover` re-drives until Gate gives a definitive
answer; Gate's idempotency turns every repeat into the original order. Never a new key for an intent.

Status machine (ours, see ``store.models.OrderStatus``)::

    submitting ─┬─> pending ──> completed | failed      (Gate's answers; tracked in bulk)
                ├─> unknown ──> (recover: same key) ──> pending | rejected | waiting_funds
                ├─> waiting_funds ──> (deposit posted: same key) ──> pending | ...
                ├─> rejected                             (a definitive 4xx, reason recorded)
                └─> needs_attention                      (Gate's order id is held by another of our
                                                          orders: logged, left to a person)

Every transition goes through ``repo.set_status`` (appends history) and publishes an ``order.<status>``
event on the bus; ``order.created`` is published when the intent is saved.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from gatebot import gate, logs
from gatebot.clock import Clock
from gatebot.events import Event, EventBus
from gatebot.gate.models import (
    CreateOrderRequest,
    CustomerAccountField,
    ProductKind,
    TopupRequest,
    unorderable_reason,
)
from gatebot.money import Money, MoneyError, parse_decimal
from gatebot.store import repo
from gatebot.store.crypto import Cipher
from gatebot.store.db import Database
from gatebot.store.models import OPEN_STATUSES, CatalogProduct, Order, OrderHistory, OrderStatus

__all__ = [
    "BalanceSnapshot",
    "GateDown",
    "OrderDraft",
    "OrderInvalid",
    "OrderService",
    "Quote",
    "TrackResult",
    "account_fields_for",
    "new_external_ref",
    "new_idempotency_key",
    "parse_account_lines",
]

log = logging.getLogger(__name__)

_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{5,20}[0-9]$")
#: How long a freshly saved intent is left to its own request before recovery may re-drive it.
SUBMIT_GRACE = timedelta(seconds=60)
#: Retry schedule for ``unknown`` orders (attempt n waits BACKOFF[min(n, len-1)]).
BACKOFF = (timedelta(seconds=15), timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2),
           timedelta(minutes=5), timedelta(minutes=15))
_BALANCES_KEY = "gate:balances"
_SUBMITTABLE = frozenset({OrderStatus.SUBMITTING, OrderStatus.UNKNOWN, OrderStatus.WAITING_FUNDS})
#: With at most this many pending orders, tracking asks for each one; above it, it pages the lists.
SINGLE_FETCH_LIMIT = 3


class OrderInvalid(Exception):
    """The draft cannot be sent. ``errors`` maps a field to a message a person understands.

    Field keys: ``product``, ``amount``, ``quantity``, ``external_ref``, ``account`` (free-form input),
    ``account.<name>``, ``balance``.
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class GateDown(Exception):
    """The Gate API is known to be down (circuit open) or could not be reached: nothing was sent."""


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """What a person asked for, as typed. Validation turns it into a request body."""

    product: int | str
    requester: str
    amount: str | int | Decimal | None = None
    quantity: int | str | None = None
    account: Mapping[str, str] = field(default_factory=dict)
    external_ref: str | None = None
    test: bool = False
    origin_channel: str | None = None
    #: The Slack modal draft this comes from: a second submit of the same draft finds the first order.
    draft_id: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceSnapshot:
    """Balances as Gate last reported them; ``cached`` when Gate did not answer in time."""

    balances: list[gate.Balance]
    at: datetime
    cached: bool = False

    def get(self, currency: str) -> Money | None:
        for b in self.balances:
            if b.currency_code.upper() == currency.upper():
                return b.money()
        return None


@dataclass(frozen=True, slots=True)
class Quote:
    """A validated draft with its cost and the balance it would leave."""

    product: CatalogProduct
    request: CreateOrderRequest
    cost: Money
    available: Money | None = None
    #: True when the balance came from the last known reading because Gate was slow.
    balance_cached: bool = False

    @property
    def balance_after(self) -> Money | None:
        return None if self.available is None else self.available - self.cost

    @property
    def account(self) -> dict[str, str]:
        top = self.request.topup_request
        return dict(top.customer_account) if top else {}


@dataclass(slots=True)
class TrackResult:
    checked: int = 0
    changed: int = 0
    requests: int = 0


def new_idempotency_key() -> str:
    return "gbk_" + secrets.token_hex(16)


def new_external_ref(now: datetime) -> str:
    """A readable reference such as ``GB-20261124-7K3Q``."""
    suffix = "".join(secrets.choice(_REF_ALPHABET) for _ in range(4))
    return f"GB-{now:%Y%m%d}-{suffix}"


def parse_account_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """Parse free-form ``key=value`` lines (also ``key: value``). Returns (fields, problems)."""
    fields: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sep = "=" if "=" in line else ":" if ":" in line else None
        if sep is None:
            problems.append(f"line {number} has no '=': write it as key=value")
            continue
        key, value = (part.strip() for part in line.split(sep, 1))
        if not _KEY_RE.match(key):
            problems.append(f"line {number}: {key!r} is not a valid field name (letters, digits, _ . -)")
        elif not value:
            problems.append(f"line {number}: {key} has no value")
        elif key in fields:
            problems.append(f"line {number}: {key} is given twice")
        else:
            fields[key] = value
    return fields, problems


def account_fields_for(product: CatalogProduct,
                       configured: Mapping[str, list[dict[str, Any]]]) -> list[CustomerAccountField] | None:
    """The customer-account fields of a product: published by Gate, else configured, else ``None``.

    ``None`` means the fields are unknown and the user types free-form ``key=value`` pairs.
    """
    published = product.account_fields()
    if published is not None:
        return published
    raw = configured.get(str(product.id)) or (configured.get(product.slug) if product.slug else None)
    if raw is None:
        return None
    return [CustomerAccountField.model_validate(item) for item in raw]


class OrderService:
    """The order pipeline over one store and one Gate client. Safe to share across tasks."""

    def __init__(
        self,
        *,
        db: Database,
        gate_client: gate.GateClient,
        cipher: Cipher,
        clock: Clock,
        events: EventBus | None = None,
        account_fields: Mapping[str, list[dict[str, Any]]] | None = None,
        default_margin: Decimal = Decimal("0"),
        resume_on_deposit: bool = True,
        gate_available: Callable[[], bool] | None = None,
    ) -> None:
        self.db = db
        self.gate = gate_client
        self.cipher = cipher
        self.clock = clock
        self.events = events or EventBus()
        self.account_fields = dict(account_fields or {})
        self.default_margin = default_margin
        self.resume_on_deposit = resume_on_deposit
        self._gate_available = gate_available or (lambda: True)

    # -- catalog ------------------------------------------------------------------------------------
    async def refresh_catalog(self) -> int:
        """Fetch product types and every product (active or not) into the cached catalog."""
        types = {t.id: t.code for t in await self.gate.list_product_types()}
        products = [p async for p in self.gate.iter_products(page_size=100)]
        for attempt in (1, 2):
            with self.db.session() as s:
                try:
                    repo.replace_catalog(s, products, types, now=self.clock.now())
                    s.commit()
                    break
                except IntegrityError:
                    # Another process (e.g. a parallel `gatebot buy` on an empty store) inserted the
                    # same products first: start again over its rows, which then are updates.
                    s.rollback()
                    if attempt == 2:
                        raise
        log.info("catalog refreshed: %d products", len(products))
        return len(products)

    def product(self, ref: int | str) -> CatalogProduct | None:
        with self.db.session() as s:
            return repo.get_product(s, ref)

    def fields_for(self, product: CatalogProduct) -> list[CustomerAccountField] | None:
        return account_fields_for(product, self.account_fields)

    # -- validation ---------------------------------------------------------------------------------
    def validate(self, draft: OrderDraft) -> tuple[CatalogProduct, CreateOrderRequest, Money]:
        """Check a draft against the cached catalog and our store; no request is sent.

        Returns the product, the exact request body and the estimated cost, or raises
        :class:`OrderInvalid` with every problem found.
        """
        errors: dict[str, str] = {}
        with self.db.session() as s:
            product = repo.get_product(s, draft.product) if str(draft.product).strip() else None
            ref_owner = repo.find_order(s, draft.external_ref.strip()) if draft.external_ref else None
            catalog_empty = repo.catalog_refreshed_at(s) is None
        if product is None:
            if not str(draft.product).strip():
                errors["product"] = "Choose a product."
            elif catalog_empty:
                errors["product"] = "The product catalog is empty: it has not been loaded from Gate yet."
            else:
                errors["product"] = f"There is no product {draft.product!r} in the catalog."
            raise OrderInvalid(errors)
        if not product.is_active:
            errors["product"] = f"{product.name} is not available right now (inactive at Gate)."

        request_ref = self._check_ref(draft.external_ref, ref_owner, errors)
        cost: Money | None = None
        topup: TopupRequest | None = None
        quantity = 1
        if product.kind is ProductKind.UNKNOWN:
            errors["product"] = unorderable_reason(product.name)
        elif product.kind is ProductKind.TOP_UP:
            amount = self._check_amount(product, draft.amount, errors)
            if draft.quantity not in (None, "", 1, "1"):
                errors["quantity"] = "Top-ups are bought one at a time: the quantity must be 1."
            account = self._check_account(product, draft.account, errors)
            if amount is not None:
                margin = product.margin if product.margin is not None else self.default_margin
                cost = amount.times(Decimal(1) + margin)
                topup = TopupRequest(amount=amount.as_api(), customer_account=account)
        else:
            quantity = self._check_quantity(draft.quantity, errors)
            if product.price is None:
                errors["product"] = f"{product.name} has no price in the catalog; refresh the catalog."
            elif quantity:
                cost = Money.rounded(product.price, product.currency).times(quantity)
        if errors or cost is None:
            raise OrderInvalid(errors or {"product": "This product cannot be ordered."})
        request = CreateOrderRequest(
            product_id=product.id, currency_code=product.currency, external_ref=request_ref,
            quantity=quantity, test=draft.test, topup_request=topup,
        )
        return product, request, cost

    @staticmethod
    def _check_ref(ref: str | None, owner: Order | None, errors: dict[str, str]) -> str | None:
        if ref is None or not ref.strip():
            return None
        ref = ref.strip()
        if not _REF_RE.match(ref):
            errors["external_ref"] = ("A reference is 1-64 letters, digits and . _ : / # - "
                                      "(starting with a letter or digit), e.g. INV-1001.")
        elif owner is not None:
            errors["external_ref"] = (f"{ref} is already used by order #{owner.id} ({owner.status}); "
                                      "use another reference, or look that order up.")
        return ref

    @staticmethod
    def _check_amount(product: CatalogProduct, raw: Any, errors: dict[str, str]) -> Money | None:
        cur = product.currency
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            errors["amount"] = f"Enter the amount to top up, in {cur}."
            return None
        try:
            amount = Money.parse(raw, cur)
        except MoneyError as exc:
            errors["amount"] = f"Enter the amount as a number like 25.00 ({exc})."
            return None
        lo = Money.rounded(product.min_amount, cur) if product.min_amount is not None else None
        hi = Money.rounded(product.max_amount, cur) if product.max_amount is not None else None
        if amount.amount <= 0:
            errors["amount"] = "The amount must be more than zero."
        elif (lo and amount < lo) or (hi and amount > hi):
            errors["amount"] = (f"The amount must be between {lo or Money.zero(cur)} and {hi}." if hi
                                else f"The amount must be at least {lo}.")
        elif product.step and product.step > 0 and (amount.amount - (lo.amount if lo else 0)) % product.step:
            step = Money.rounded(product.step, cur)
            base = lo.amount if lo else Decimal(0)
            below = base + ((amount.amount - base) // product.step) * product.step
            errors["amount"] = (f"The amount must go in steps of {step} — e.g. "
                                f"{Money.rounded(below, cur)} or {Money.rounded(below + product.step, cur)}.")
        else:
            return amount
        return None

    @staticmethod
    def _check_quantity(raw: Any, errors: dict[str, str]) -> int:
        if raw is None or raw == "":
            return 1
        try:
            quantity = int(parse_decimal(raw, what="quantity")) if not isinstance(raw, int) else raw
            if Decimal(str(raw).strip()) != quantity:
                raise ValueError
        except (MoneyError, ValueError, ArithmeticError):
            errors["quantity"] = "The quantity must be a whole number from 1 to 100."
            return 0
        if not 1 <= quantity <= 100:
            errors["quantity"] = "The quantity must be a whole number from 1 to 100."
            return 0
        return quantity

    def _check_account(self, product: CatalogProduct, given: Mapping[str, str],
                       errors: dict[str, str]) -> dict[str, str]:
        values = {k.strip(): (v or "").strip() for k, v in given.items()}
        logs.remember_secrets(*values.values())  # before any reply can echo them (Bolt logs replies at DEBUG)
        fields = self.fields_for(product)
        if fields is None:
            present = {k: v for k, v in values.items() if v}
            if not present:
                errors["account"] = ("Enter the customer's account as key=value lines, "
                                     "e.g. player_id=123456 (ask the vendor which fields it needs).")
            for key in present:
                if not _KEY_RE.match(key):
                    errors["account"] = f"{key!r} is not a valid field name (letters, digits, _ . -)."
            return present
        result: dict[str, str] = {}
        known = {f.name for f in fields}
        for f in fields:
            value = values.get(f.name, "")
            label = f.display_label
            if not value:
                if f.required:
                    errors[f"account.{f.name}"] = f"{label} is required for {product.name}."
                continue
            if f.type == "email" and not _EMAIL_RE.match(value):
                errors[f"account.{f.name}"] = f"{label} must be an email address like name@example.com."
            elif f.type == "phone" and not _PHONE_RE.match(value):
                errors[f"account.{f.name}"] = f"{label} must be a phone number like +14155550123."
            elif f.pattern and not _full_match(f.pattern, value):
                errors[f"account.{f.name}"] = f"{label} is not in the expected format ({f.pattern})."
            else:
                result[f.name] = value
        extra = sorted(k for k, v in values.items() if k not in known and v)
        if extra:
            errors["account"] = (f"{product.name} does not take {', '.join(extra)}; "
                                 f"its fields are {', '.join(sorted(known)) or 'none'}.")
        return result

    # -- quote and place ------------------------------------------------------------------------------
    async def quote(self, draft: OrderDraft, *, balance_wait: float | None = None) -> Quote:
        """Validate, then check the balance in the order's currency (one ``GET /balance``).

        ``balance_wait`` bounds the wait for Gate (a Slack modal has 3 s): past it, the last known
        balance is used and the quote says so; the order is checked again by Gate itself.
        """
        self._require_gate()
        product, request, cost = self.validate(draft)
        snapshot = await self.balances(max_wait=balance_wait)
        available = snapshot.get(cost.currency)
        if available is None:
            raise OrderInvalid({"balance": f"The Gate account has no {cost.currency} balance."})
        if cost > available:
            short = cost - available
            raise OrderInvalid({"balance": (
                f"Not enough {cost.currency}: this order costs {cost} and {available} is available "
                f"(short by {short}). Ask finance for a deposit, then try again.")})
        return Quote(product=product, request=request, cost=cost, available=available,
                     balance_cached=snapshot.cached)

    async def place(self, draft: OrderDraft, *, actor: str | None = None) -> Order:
        """Quote, persist the intent, submit. Returns the order as stored after Gate's answer.

        Raises :class:`OrderInvalid` (nothing saved, nothing sent) or :class:`GateDown`. A draft that
        was already placed (``draft_id``) returns that order and sends nothing new.
        """
        if draft.draft_id:
            with self.db.session() as s:
                existing = repo.order_by_draft(s, draft.draft_id)
            if existing is not None:
                return existing
        quote = await self.quote(draft)
        order = await self.save_intent(quote, draft)
        return await self.submit(_id(order), actor=actor or draft.requester)

    async def save_intent(self, quote: Quote, draft: OrderDraft) -> Order:
        """Commit the order with a new idempotency key and its full body — before anything is sent."""
        now = self.clock.now()
        product = quote.product
        with self.db.session() as s:
            for _ in range(5):
                ref = quote.request.external_ref or new_external_ref(now)
                if quote.request.external_ref or not repo.external_ref_exists(s, ref):
                    break
            request = quote.request.model_copy(update={"external_ref": ref})
            top = request.topup_request
            order = Order(
                external_ref=ref, idempotency_key=new_idempotency_key(), product_id=product.id,
                product_name=product.name, product_type=product.type_code, currency=quote.cost.currency,
                amount=Decimal(top.amount) if top else None, quantity=request.quantity,
                estimated_cost=quote.cost.amount, status=OrderStatus.SUBMITTING, is_test=request.test,
                requester=draft.requester, origin_channel=draft.origin_channel, attempts=0,
                draft_id=draft.draft_id,
                next_attempt_at=now + SUBMIT_GRACE, created_at=now, updated_at=now,
            )
            order.set_secret_fields(self.cipher, body=request.body(),
                                    account=dict(top.customer_account) if top else None)
            try:
                repo.add_order(s, order, actor=draft.requester, note="intent saved")
                s.commit()
            except IntegrityError:
                s.rollback()
                existing = repo.order_by_draft(s, draft.draft_id) if draft.draft_id else None
                if existing is not None:
                    log.info("draft already placed as order #%s; not placing it twice", existing.id)
                    return existing
                # A race lost to another intent with the same external_ref (checked before, taken since):
                # the same answer as a sequential duplicate, from the same rule.
                errors: dict[str, str] = {}
                self._check_ref(ref, repo.find_order(s, ref), errors)
                if errors:
                    raise OrderInvalid(errors) from None
                raise
        log.info("order #%s intent saved (%s, ref %s)", order.id, product.name, ref)
        await self._emit("order.created", order)
        return order

    async def submit(self, order_id: int, *, actor: str = "system:submit") -> Order:
        """Send (or re-send) an order's create request with its own key and body; record the answer."""
        with self.db.session() as s:
            order = repo.get_order(s, order_id)
            if order is None:
                raise LookupError(f"no order #{order_id}")
            if order.status not in _SUBMITTABLE:
                return order
            body = order.request_body(self.cipher)
            key = order.idempotency_key
            order.attempts += 1
            order.next_attempt_at = self.clock.now() + _backoff(order.attempts)
            order.updated_at = self.clock.now()
            s.add(order)
            s.commit()
        try:
            result = await self.gate.create_order(body, idempotency_key=key)
        except gate.GateInsufficientBalance as exc:
            reason = (f"Gate says the {order.currency} balance is too low. "
                      + ("It will be retried automatically, with the same key, when a deposit posts."
                         if self.resume_on_deposit else "Place it again after a deposit posts."))
            return await self._transition(order_id, OrderStatus.WAITING_FUNDS, actor=actor, reason=reason,
                                    error_code=exc.code)
        except gate.GateIdempotencyConflict as exc:
            return await self._transition(order_id, OrderStatus.REJECTED, actor=actor, error_code=exc.code,
                                    reason="Gate holds a different order under this key; nothing more will "
                                           "be sent. Ask an admin to check it at Gate.")
        except (gate.GateRejected, gate.GateNotFound, gate.GateUnauthorized) as exc:
            return await self._transition(order_id, OrderStatus.REJECTED, actor=actor, error_code=exc.code,
                                    reason=f"Gate refused the order: {exc.message}")
        except gate.GateError as exc:
            # Timeout, reset, 5xx, 429, unreadable answer: the order may exist. Same key next time.
            log.warning("order #%s outcome unknown (%s); will retry with the same key", order_id,
                        type(exc).__name__)
            return await self._transition(order_id, OrderStatus.UNKNOWN, actor=actor, error_code=exc.code,
                                    reason="Gate did not give a clear answer; retrying with the same key "
                                           "(no duplicate can be created).")
        return await self._apply_gate_order(order_id, result.order, actor=actor)

    # -- recovery, tracking, resuming --------------------------------------------------------------------
    async def recover(self, *, everything: bool = False, limit: int = 200) -> int:
        """Re-drive orders left ``submitting``/``unknown``; ``everything`` ignores their retry times.

        At start-up call it with ``everything=True``: a process that died mid-request left its
        intents behind, and re-sending them with their own keys is always safe.
        """
        now = self.clock.now()
        with self.db.session() as s:
            due = repo.orders_due(s, [OrderStatus.SUBMITTING, OrderStatus.UNKNOWN],
                                  now=now + timedelta(days=3650) if everything else now, limit=limit)
            ids = [_id(o) for o in due]
        for order_id in ids:
            if not self._gate_available():
                break
            await self.submit(order_id, actor="system:recovery")
        return len(ids)

    async def track(self) -> TrackResult:
        """Bring pending orders up to date with Gate, in bulk when there are many."""
        result = TrackResult()
        with self.db.session() as s:
            pending = {o.gate_order_id: (_id(o), o.created_at, o.order_content_enc is not None)
                       for o in repo.open_orders(s, [OrderStatus.PENDING]) if o.gate_order_id}
        result.checked = len(pending)
        if not pending:
            return result
        seen: dict[str, gate.Order] = {}
        if len(pending) <= SINGLE_FETCH_LIMIT:
            for gate_id in pending:
                result.requests += 1
                try:
                    seen[gate_id] = await self.gate.get_order(gate_id)
                except gate.GateNotFound:
                    log.warning("Gate does not know order %s", gate_id)
        else:
            still_pending: set[str] = set()
            async for page in self._pages(status="pending"):
                result.requests += 1
                for o in page:
                    if o.id in pending:
                        still_pending.add(o.id)
                        seen[o.id] = o
            moved = {gid for gid in pending if gid not in still_pending}
            if moved:
                oldest = min(pending[gid][1] for gid in moved) - timedelta(minutes=10)
                async for page in self._pages():
                    result.requests += 1
                    for o in page:
                        if o.id in moved:
                            seen[o.id] = o
                            moved.discard(o.id)
                    if not moved or (page and page[-1].created_at and page[-1].created_at < oldest):
                        break
                for gid in list(moved)[:50]:  # not found in the lists: ask one by one (bounded)
                    result.requests += 1
                    try:
                        seen[gid] = await self.gate.get_order(gid)
                    except gate.GateNotFound:
                        log.warning("Gate does not know order %s", gid)
        for gate_id, gate_order in seen.items():
            order_id, _, has_content = pending[gate_id]
            if gate_order.status == OrderStatus.PENDING and (has_content or not gate_order.order_content):
                continue  # nothing new: no write
            after = await self._apply_gate_order(order_id, gate_order, actor="system:tracker")
            if after.status != OrderStatus.PENDING:
                result.changed += 1
        return result

    async def _pages(self, **filters: Any) -> AsyncIterator[list[gate.Order]]:
        """Pages of ``GET /orders`` (newest first), 100 orders each."""
        page = 1
        while True:
            listing = await self.gate.list_orders(page=page, page_size=100, **filters)
            yield listing.items
            if not listing.has_more:
                return
            page += 1

    async def resume_waiting(self, currency: str | None = None) -> int:
        """Re-submit orders waiting for funds (same key), e.g. after a deposit in ``currency`` posted."""
        if not self.resume_on_deposit:
            return 0
        with self.db.session() as s:
            waiting = [_id(o) for o in repo.open_orders(s, [OrderStatus.WAITING_FUNDS])
                       if currency is None or o.currency == currency]
        for order_id in waiting:
            await self.submit(order_id, actor="system:deposit")
        return len(waiting)

    # -- lookups ----------------------------------------------------------------------------------------
    def find(self, ref: str) -> Order | None:
        """Find an order by our number, Gate id, external_ref or idempotency key."""
        with self.db.session() as s:
            return repo.find_order(s, ref)

    def lookup(self, ref: str) -> list[Order]:
        """The orders ``ref`` may mean, as a person types it: the exact match alone, else the external_ref
        in any case and Gate ids starting with it (several are listed by the caller, never guessed)."""
        with self.db.session() as s:
            return repo.find_orders(s, ref)

    def history(self, order_id: int) -> list[OrderHistory]:
        with self.db.session() as s:
            return repo.history(s, order_id)

    def content(self, order: Order) -> dict[str, Any] | None:
        """The decrypted ``order_content`` (voucher codes!). Callers decide who may see it."""
        return order.content(self.cipher)

    # -- internals -------------------------------------------------------------------------------------------
    def _require_gate(self) -> None:
        if not self._gate_available():
            raise GateDown("The Gate API is down right now, so no order was sent. "
                           "Try again when it has recovered (see /gate health).")

    async def balances(self, *, max_wait: float | None = None) -> BalanceSnapshot:
        """Fetch the balances (and remember them); past ``max_wait`` seconds use the last known ones.

        Raises :class:`GateDown` when Gate cannot answer and nothing is known yet.
        """
        fetch = asyncio.ensure_future(self.gate.get_balance())
        try:
            balances = await asyncio.wait_for(asyncio.shield(fetch), max_wait) if max_wait else await fetch
        except (TimeoutError, gate.GateError) as exc:
            if isinstance(exc, TimeoutError):
                fetch.add_done_callback(self._remember_late_balances)
            cached = self.cached_balances()
            if cached is None:
                raise GateDown(f"Could not read the balance from Gate ({type(exc).__name__}); "
                               "no order was sent. Try again in a minute.") from None
            return cached
        return self._remember_balances(balances)

    def cached_balances(self) -> BalanceSnapshot | None:
        """The balances last read from Gate by any process, or ``None``."""
        with self.db.session() as s:
            raw = repo.kv_get(s, _BALANCES_KEY)
        if not raw:
            return None
        return BalanceSnapshot(balances=[gate.Balance.model_validate(b) for b in raw["items"]],
                               at=raw["at"], cached=True)

    def _remember_balances(self, balances: list[gate.Balance]) -> BalanceSnapshot:
        now = self.clock.now()
        with self.db.session() as s:
            repo.kv_set(s, _BALANCES_KEY, {"at": now, "items": [
                {"currency_code": b.currency_code, "available": b.available, "updated_at": b.updated_at}
                for b in balances]}, now)
            s.commit()
        return BalanceSnapshot(balances=balances, at=now)

    def _remember_late_balances(self, fetch: asyncio.Future[list[gate.Balance]]) -> None:
        if not fetch.cancelled() and fetch.exception() is None:
            self._remember_balances(fetch.result())

    async def _apply_gate_order(self, order_id: int, g: gate.Order, *, actor: str) -> Order:
        """Record what Gate says about an order (create answer, tracking). Never moves backwards.

        A Gate order id that another of our orders already holds is an inconsistency, not a crash:
        the order moves to ``needs_attention`` (see :meth:`_gate_id_taken`).
        """
        try:
            return await self._record_gate_order(order_id, g, actor=actor)
        except IntegrityError:  # the write was rolled back; the unique index on gate_order_id says who
            holder = self._gate_id_holder(g.id, order_id)
            if holder is None:
                raise
        return await self._gate_id_taken(order_id, g.id, holder, actor=actor)

    def _gate_id_holder(self, gate_id: str, order_id: int) -> int | None:
        """The number of *another* order holding ``gate_id``, or ``None``."""
        with self.db.session() as s:
            held = repo.orders_by_gate_ids(s, [gate_id]).get(gate_id)
        return held.id if held is not None and held.id != order_id else None

    async def _gate_id_taken(self, order_id: int, gate_id: str, holder: int, *, actor: str) -> Order:
        """Gate answered with an order id our order ``holder`` holds: stop, say so, leave it to a person."""
        log.warning("order #%s: Gate answered with order %s, already held by order #%s; "
                    "moved to needs_attention (nothing more is sent for it)", order_id, gate_id, holder)
        reason = (f"Gate answered with order {gate_id}, which our order #{holder} already holds, so one of "
                  "the two records is wrong. Nothing more is sent or tracked for this order. Look both up at "
                  "Gate (by this order's external_ref and by that id) and settle it by hand; if this order "
                  "was not delivered, place it again with a new reference.")
        return await self._transition(order_id, OrderStatus.NEEDS_ATTENTION, actor=actor, reason=reason,
                                      error_code="gate_order_id_taken", allowed_from=OPEN_STATUSES)

    async def _record_gate_order(self, order_id: int, g: gate.Order, *, actor: str) -> Order:
        status = {"completed": OrderStatus.COMPLETED, "failed": OrderStatus.FAILED}.get(
            g.status, OrderStatus.PENDING)

        def update(order: Order, now: datetime) -> None:
            order.gate_order_id = g.id
            for name in ("charged_amount", "balance_before", "balance_after"):
                value = getattr(g, name)
                if value is not None:
                    setattr(order, name, value)
            if g.order_content:
                order.set_secret_fields(self.cipher, content=g.order_content)
            order.submitted_at = order.submitted_at or now
            order.completed_at = order.completed_at or g.completed_at
            order.failed_at = order.failed_at or g.failed_at
            order.next_attempt_at = None
            order.error_code = None

        reason = {
            OrderStatus.PENDING: "Gate accepted the order; waiting for the vendor.",
            OrderStatus.COMPLETED: "Gate delivered the order.",
            OrderStatus.FAILED: "Gate gave no reason",  # the Slack message and the CLI say what happens next
        }[status]
        return await self._record(order_id, status, actor=actor, reason=reason, update=update,
                                  allowed_from=OPEN_STATUSES)

    async def _transition(self, order_id: int, status: OrderStatus, *, actor: str, reason: str,
                          error_code: str | None,
                          allowed_from: frozenset[OrderStatus] = _SUBMITTABLE) -> Order:
        """Record a submit that got no order back (refused, waiting for funds, outcome unknown...)."""

        def update(order: Order, now: datetime) -> None:
            order.error_code = error_code
            if status is not OrderStatus.UNKNOWN:
                order.next_attempt_at = None

        return await self._record(order_id, status, actor=actor, reason=reason, update=update,
                                  allowed_from=allowed_from)

    async def _record(self, order_id: int, status: OrderStatus, *, actor: str, reason: str,
                      update: Callable[[Order, datetime], None],
                      allowed_from: frozenset[OrderStatus]) -> Order:
        """Apply ``update`` and move to ``status`` in one transaction, unless the order has moved on.

        An order only moves forward: a late or concurrent answer (another process, a recovery racing
        the original request) never takes a pending or final order back to ``unknown``. The status
        change is compare-and-set in the store; losing that race means someone else recorded it.
        """
        now = self.clock.now()
        with self.db.session() as s:
            order = repo.get_order(s, order_id)
            if order is None:
                raise LookupError(f"no order #{order_id}")
            current = OrderStatus(order.status)
            if current not in allowed_from and current is not status:
                return order
            update(order, now)
            changed = current is not status
            try:
                if changed:
                    order.status_reason = reason
                    repo.set_status(s, order, status, actor=actor, note=reason, now=now)
                else:
                    order.updated_at = now
                    s.add(order)
                s.commit()
            except repo.StatusConflict:
                s.rollback()
                log.info("order #%s was updated concurrently; keeping the other writer's status", order_id)
                fresh = repo.get_order(s, order_id)
                assert fresh is not None
                return fresh
        if changed:
            await self._emit(f"order.{status}", order)
        return order

    async def _emit(self, kind: str, order: Order) -> None:
        await self.events.publish(Event(kind=kind, at=self.clock.now(), order_id=order.id,
                                        data={"status": str(order.status)}))


def _id(order: Order) -> int:
    if order.id is None:  # pragma: no cover - stored orders always have a number
        raise ValueError("order has no number yet")
    return order.id


def _backoff(attempts: int) -> timedelta:
    return BACKOFF[min(max(attempts - 1, 0), len(BACKOFF) - 1)]


def _full_match(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        log.warning("ignoring an invalid account-field pattern")
        return True

