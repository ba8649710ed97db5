"""The Gate API client: :class:`GateClient` (async, on ``httpx.AsyncClient``), the transport seam.

What lives here: building requests (raw-key ``Authorization`` header, ``/agent/{agent_id}/...``
paths, ``Idempotency-Key``, canonical JSON bytes for a create), the typed public methods, one HTTP
exchange classified per attempt (:meth:`GateClient._attempt`, reported to ``on_attempt`` /
``on_call``), and walking pages. ``transport`` is the seam: tests and the console pass the
in-process sandbox's transport, production passes nothing.

Its neighbours, and what they hold:

* :mod:`gatebot.gate.retry` — :class:`RetryPolicy` and the retry rules: reads retried on transport
  errors, 5xx and 429; a create retried with the **same** key and the **same bytes**, never on
  another 4xx; and the outcome-unknown rule: when a create gives up after any attempt that was sent
  and got no definitive answer, the caller gets :class:`~gatebot.gate.errors.GateOutcomeUnknown` and
  must retry later with the same key, never a new one. Every wait goes through the injected ``sleep``.
* :mod:`gatebot.gate.responses` — reading answers leniently (bare array or ``{"items": [...]}``
  envelope, numbers or strings for amounts, unknown fields ignored, ``parse_float=Decimal``) and
  mapping error answers onto :mod:`gatebot.gate.errors`.

Logging records method, path, status and attempt — never headers, bodies, keys or voucher codes.
An unreadable answer is described, never quoted. Every ``order_content`` and customer account the
client sees is handed to :mod:`gatebot.logs`, which keeps those values out of every log line.

Must not import Slack, the scheduler, the store or the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr

from gatebot import logs
from gatebot.gate.errors import GateBadResponse, GateTimeout, GateTransportError
from gatebot.gate.models import (
    Balance,
    Category,
    CreateOrderRequest,
    CreateOrderResult,
    Deposit,
    Health,
    Order,
    Page,
    Product,
    ProductType,
)
from gatebot.gate.responses import decode, error_of, outcome_of, parse_list, parse_object, parse_page, short
from gatebot.gate.retry import NOT_SENT, Failure, RetryPolicy, parse_retry_after, with_retries

# RetryPolicy is re-exported: ``from gatebot.gate.client import RetryPolicy`` keeps working.
__all__ = ["DEFAULT_TIMEOUT", "ROUTES", "AttemptHook", "CallAttempt", "CallHook", "GateClient", "RetryPolicy"]

log = logging.getLogger(__name__)

#: Connect quickly or not at all; give a slow Gate 10 s to answer.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

#: ``on_attempt(endpoint_label, success)``: called once per real HTTP attempt.
AttemptHook = Callable[[str, bool], None]

#: Each endpoint label's route template (for metrics: never the raw path, which carries ids).
ROUTES: Mapping[str, str] = {
    "health": "GET /health",
    "product_types": "GET /product-types",
    "categories": "GET /product-categories",
    "products": "GET /products",
    "product": "GET /products/{id}",
    "orders": "GET /orders",
    "order": "GET /orders/{id}",
    "create_order": "POST /orders",
    "balance": "GET /balance",
    "deposits": "GET /deposits",
}


@dataclass(frozen=True, slots=True)
class CallAttempt:
    """One real HTTP attempt as ``on_call`` sees it. ``outcome``: ``ok``, ``rejected`` (4xx),
    ``rate_limited`` (429), ``server_error`` (5xx), ``timeout``, ``transport_error`` or ``bad_response``.
    ``attempt`` > 1 is a retry. Carries no URL, body or header: nothing secret."""

    label: str
    outcome: str
    seconds: float
    attempt: int = 1

    @property
    def route(self) -> str:
        return ROUTES.get(self.label, "other")


#: ``on_call(attempt)``: like ``on_attempt`` with the outcome, the latency and the attempt number.
CallHook = Callable[[CallAttempt], None]

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

_MAX_KEY_LENGTH = 255

# -- the client -----------------------------------------------------------------------------------


class GateClient:
    """Async client of one agent's Gate API account.

    ``base_url`` may carry a path prefix and may or may not end in ``/``; business calls go to
    ``{base_url}/agent/{agent_id}/...`` and the health probe to ``{base_url}/health``.
    ``transport`` lets tests and the console run against the in-process sandbox.
    Use as ``async with GateClient(...) as gate:`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | SecretStr,
        agent_id: uuid.UUID | str,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_attempt: AttemptHook | None = None,
        on_call: CallHook | None = None,
    ) -> None:
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not key.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        if any(ch in key.get_secret_value() for ch in "\r\n"):
            raise ValueError("api_key must be a single line")
        if not base_url or not base_url.strip():
            raise ValueError("base_url must not be empty")
        self._api_key = key
        logs.remember_secrets(key, anywhere=True)
        self.agent_id = agent_id if isinstance(agent_id, uuid.UUID) else uuid.UUID(str(agent_id))
        self.base_url = base_url.strip().rstrip("/") + "/"
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._on_attempt = on_attempt
        self._on_call = on_call
        self._agent_path = f"agent/{self.agent_id}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout or DEFAULT_TIMEOUT,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "gatebot"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"GateClient(base_url={self.base_url!r}, agent_id={str(self.agent_id)!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- health -----------------------------------------------------------------------------------

    async def health(self) -> Health:
        """Probe ``GET /health`` once (no auth, no retries). Never raises for HTTP status or transport."""
        started = time.perf_counter()
        try:
            response = await self._http.get("health")
        except httpx.TimeoutException as exc:
            self._attempted("health", False, "timeout", started)
            return Health(ok=False, detail=f"timed out ({type(exc).__name__})")
        except httpx.RequestError as exc:
            self._attempted("health", False, "transport_error", started)
            return Health(ok=False, detail=f"unreachable ({type(exc).__name__}: {short(str(exc))})")
        ok = response.is_success
        self._attempted("health", ok, outcome_of(response.status_code), started)
        detail = f"HTTP {response.status_code}"
        try:
            body = json.loads(response.text, parse_float=Decimal)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("status"), str):
            detail = f"{detail} {short(body['status'], 40)}"
        log.debug("gate GET /health -> %s", response.status_code)
        return Health(ok=ok, status_code=response.status_code, detail=detail)

    # -- catalog ----------------------------------------------------------------------------------

    async def list_product_types(self) -> list[ProductType]:
        return await self._read("product_types", "product-types", lambda data, where: parse_list(
            data, ProductType, where))

    async def list_categories(self) -> list[Category]:
        return await self._read("categories", "product-categories", lambda data, where: parse_list(
            data, Category, where))

    async def list_products(
        self,
        *,
        page: int = 1,
        page_size: int = 50,
        product_type_id: int | None = None,
        category_id: int | None = None,
        is_active: bool | None = None,
    ) -> Page[Product]:
        params = _page_params(page, page_size)
        params.update(_filters(product_type_id=product_type_id, category_id=category_id, is_active=is_active))
        return await self._read("products", "products", lambda data, where: parse_page(
            data, Product, page, page_size, where), params=params)

    def iter_products(
        self,
        *,
        page_size: int = 100,
        product_type_id: int | None = None,
        category_id: int | None = None,
        is_active: bool | None = None,
    ) -> AsyncIterator[Product]:
        """Every product matching the filters, walking all pages."""

        async def fetch(page: int) -> Page[Product]:
            return await self.list_products(page=page, page_size=page_size, product_type_id=product_type_id,
                                            category_id=category_id, is_active=is_active)

        return _walk(fetch)

    async def get_product(self, product_id: int) -> Product:
        path = f"products/{int(product_id)}"
        return await self._read("product", path, lambda data, where: parse_object(
            data, Product, where, wrapper="product"))

    # -- orders -----------------------------------------------------------------------------------

    async def list_orders(
        self, *, page: int = 1, page_size: int = 50, status: str | None = None, product_id: int | None = None
    ) -> Page[Order]:
        params = _page_params(page, page_size)
        params.update(_filters(status=status, product_id=product_id))
        return await self._read("orders", "orders", lambda data, where: parse_page(
            data, Order, page, page_size, where), params=params)

    def iter_orders(
        self, *, page_size: int = 100, status: str | None = None, product_id: int | None = None
    ) -> AsyncIterator[Order]:
        """Every order matching the filters (newest first), walking all pages."""

        async def fetch(page: int) -> Page[Order]:
            return await self.list_orders(page=page, page_size=page_size, status=status,
                                          product_id=product_id)

        return _walk(fetch)

    async def get_order(self, order_id: str) -> Order:
        order_ref = _path_segment(order_id, "order_id")
        path = f"orders/{order_ref}"
        return await self._read("order", path, lambda data, where: parse_object(
            data, Order, where, wrapper="order"))

    async def create_order(
        self, request: CreateOrderRequest | Mapping[str, Any], *, idempotency_key: str
    ) -> CreateOrderResult:
        """Create an order; safe to call again with the same key and request after any failure.

        ``replayed`` is True when the server answered 200 (it had already created this order for
        this key) rather than 201. A dict ``request`` is sent as given (``Decimal`` becomes a
        string), which lets callers resend a persisted body byte for byte.

        Raises :class:`GateOutcomeUnknown` when the order may or may not exist (retry later with
        the same key), a :class:`GateRejected`/other 4xx error when Gate refused it, and
        :class:`GateRateLimited`/:class:`GateTransportError` only when no attempt can have created it.
        """
        key = _check_idempotency_key(idempotency_key)
        body = request.body() if isinstance(request, CreateOrderRequest) else dict(request)
        topup = body.get("topup_request")
        if isinstance(topup, Mapping):
            logs.remember_content(topup.get("customer_account"))
        # Canonical bytes (sorted keys, no spaces): a retry after a restart, from a body persisted
        # in a store that reorders keys, still sends exactly the same bytes.
        content = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_json_default).encode()

        def parse(status: int, data: Any, where: str) -> CreateOrderResult:
            order = parse_object(data, Order, where, wrapper="order")
            return CreateOrderResult(order=order, replayed=status == 200)

        return await self._call("POST", "create_order", "orders", parse, content=content, idempotency_key=key)

    # -- money ------------------------------------------------------------------------------------

    async def get_balance(self) -> list[Balance]:
        return await self._read("balance", "balance", lambda data, where: parse_list(data, Balance, where))

    async def list_deposits(
        self, *, page: int = 1, page_size: int = 50, status: str | None = None
    ) -> Page[Deposit]:
        params = _page_params(page, page_size)
        params.update(_filters(status=status))
        return await self._read("deposits", "deposits", lambda data, where: parse_page(
            data, Deposit, page, page_size, where), params=params)

    def iter_deposits(self, *, page_size: int = 100, status: str | None = None) -> AsyncIterator[Deposit]:
        """Every deposit matching the filter (newest first), walking all pages."""

        async def fetch(page: int) -> Page[Deposit]:
            return await self.list_deposits(page=page, page_size=page_size, status=status)

        return _walk(fetch)

    # -- transport --------------------------------------------------------------------------------

    def _attempted(self, label: str, success: bool, outcome: str, started: float, attempt: int = 1) -> None:
        try:  # a broken hook must not turn a good answer into a failure
            if self._on_attempt is not None:
                self._on_attempt(label, success)
            if self._on_call is not None:
                self._on_call(CallAttempt(label, outcome, time.perf_counter() - started, attempt))
        except Exception:
            log.exception("on_attempt hook failed for %s", label)

    async def _read(
        self, label: str, path: str, parse: Callable[[Any, str], R], *, params: dict[str, str] | None = None
    ) -> R:
        return await self._call("GET", label, path, lambda _status, data, where: parse(data, where),
                                params=params)

    async def _call(
        self,
        method: str,
        label: str,
        path: str,
        parse: Callable[[int, Any, str], R],
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Send with retries; return ``parse(status, decoded JSON, where)`` of the first readable 2xx.

        ``parse`` runs inside the attempt, so a body of the wrong shape is an unreadable answer like
        a non-JSON one (reported to ``on_attempt`` as a failure). When to retry, and what is raised on
        giving up (``idempotency_key`` marks a create), is :func:`~gatebot.gate.retry.with_retries`'s.
        """
        url = f"{self._agent_path}/{path}"
        where = f"{method} /{url}"
        headers = {"Authorization": self._api_key.get_secret_value()}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key

        async def attempt_once(attempt: int) -> R | Failure:
            return await self._attempt(method, url, where, label, parse, params, content, headers, attempt)

        return await with_retries(attempt_once, policy=self.retry, sleep=self._sleep, where=where,
                                  idempotency_key=idempotency_key)

    async def _attempt(
        self,
        method: str,
        url: str,
        where: str,
        label: str,
        parse: Callable[[int, Any, str], R],
        params: dict[str, str] | None,
        content: bytes | None,
        headers: dict[str, str],
        attempt: int,
    ) -> R | Failure:
        """One HTTP exchange, classified. Reports it to ``on_attempt`` exactly once."""
        of = self.retry.attempts
        started = time.perf_counter()
        try:
            response = await self._http.request(method, url, params=params, content=content, headers=headers)
        except httpx.RequestError as exc:
            outcome, failure = _no_answer(exc, where, attempt)
            self._attempted(label, False, outcome, started, attempt)
            if outcome == "bad_response":
                log.warning("gate %s: undecodable answer on attempt %d/%d", where, attempt, of)
            else:
                log.warning("gate %s: %s on attempt %d/%d", where, type(exc).__name__, attempt, of)
            return failure
        status = response.status_code
        log.debug("gate %s -> %d (attempt %d/%d)", where, status, attempt, of)
        if response.is_success:
            try:
                parsed = parse(status, decode(response, where), where)
            except GateBadResponse as bad:
                self._attempted(label, False, "bad_response", started, attempt)
                log.warning("gate %s: unreadable %d answer on attempt %d/%d", where, status, attempt, of)
                return Failure(bad, unreadable=True)
            self._attempted(label, True, "ok", started, attempt)
            return parsed
        retry_after = parse_retry_after(response)
        error = error_of(response, retry_after)
        retryable = status == 429 or status >= 500
        # A 4xx is a healthy server saying no; only 5xx/429 count against Gate's health.
        self._attempted(label, not retryable, outcome_of(status), started, attempt)
        if retryable:
            log.warning("gate %s -> %d on attempt %d/%d", where, status, attempt, of)
        return Failure(error, retryable=retryable, sent=status != 429, retry_after=retry_after)


def _no_answer(exc: httpx.RequestError, where: str, attempt: int) -> tuple[str, Failure]:
    """The ``on_call`` outcome and the failure of an exchange that got no readable HTTP answer."""
    if isinstance(exc, httpx.TimeoutException):
        error: GateTransportError = GateTimeout(f"{where}: timed out ({type(exc).__name__}) on attempt {attempt}")
        return "timeout", Failure(error, sent=not isinstance(exc, NOT_SENT))
    if isinstance(exc, httpx.TransportError):
        detail = f"{type(exc).__name__} ({short(str(exc))})"
        error = GateTransportError(f"{where}: {detail} on attempt {attempt}")
        return "transport_error", Failure(error, sent=not isinstance(exc, NOT_SENT))
    if isinstance(exc, httpx.DecodingError):  # an answer arrived but its content-encoding is broken
        bad = GateBadResponse(f"{where}: the answer could not be decoded ({short(str(exc))})")
        return "bad_response", Failure(bad, unreadable=True)
    # anything else httpx may add: assume it may have been sent
    return "transport_error", Failure(GateTransportError(f"{where}: {type(exc).__name__} on attempt {attempt}"))


# -- helpers --------------------------------------------------------------------------------------


def _check_idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValueError("idempotency_key must be a non-empty string")
    if len(key) > _MAX_KEY_LENGTH or not all(" " < ch <= "~" for ch in key):
        raise ValueError(
            f"idempotency_key must be 1-{_MAX_KEY_LENGTH} printable ASCII characters without spaces"
        )
    return key


def _path_segment(value: str, what: str) -> str:
    text = str(value).strip()
    if not text or any(ch in text for ch in "/?#%\\") or text in (".", ".."):
        raise ValueError(f"{what} {value!r} is not a valid identifier")
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} in a Gate request body")


def _page_params(page: int, page_size: int) -> dict[str, str]:
    if page < 1:
        raise ValueError("page starts at 1")
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    return {"page": str(page), "pageSize": str(page_size)}


def _filters(**values: str | int | bool | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        params[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return params



async def _walk(fetch: Callable[[int], Awaitable[Page[M]]]) -> AsyncIterator[M]:
    """Yield items of page 1, 2, ... until a page says it is the last.

    Guards against servers that ignore paging (the same page again) and against items shifting
    between pages while we walk (newest-first lists grow at the front): each id is yielded once.
    """
    seen: set[Hashable] = set()
    page_no = 1
    previous_ids: list[Hashable] | None = None
    while True:
        page = await fetch(page_no)
        ids = [_identity(item) for item in page.items]
        if not page.items or ids == previous_ids:
            return
        for item, ident in zip(page.items, ids, strict=True):
            if ident in seen:
                continue
            seen.add(ident)
            yield item
        if not page.has_more:
            return
        previous_ids = ids
        page_no += 1


def _identity(item: BaseModel) -> Hashable:
    ident = getattr(item, "id", None)
    return ident if isinstance(ident, Hashable) and ident is not None else id(item)
