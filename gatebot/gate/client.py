"""The Gate API client: :class:`GateClient` (async, on ``httpx.AsyncClient``) and :class:`RetryPolicy`.

What lives here: building requests (raw-key ``Authorization`` header, ``/agent/{agent_id}/...``
paths, ``Idempotency-Key``), reading answers leniently (bare array or ``{"items": [...]}``
envelope, numbers or strings for amounts, unknown fields ignored, ``parse_float=Decimal``),
mapping error answers onto :mod:`gatebot.gate.errors`, and retrying with backoff.

The retry rules, and why:

* Reads are retried on transport errors (timeouts included), 5xx and 429: repeating a GET is
  harmless.
* ``create_order`` is retried on the same conditions with the **same** key and the **same bytes**,
  which is exactly what the provider's idempotency promises make safe. It is never retried on any
  other 4xx: those are definitive answers.
* When a create gives up, the question is "could the order exist?". If any attempt was sent and
  got no definitive answer (timeout, reset, 5xx, unreadable 2xx), it could: the caller gets
  :class:`~gatebot.gate.errors.GateOutcomeUnknown` and must retry later with the same key — even
  if the *last* attempt was a 429. Only when every attempt was definitively not processed (429s,
  connection refused) does the real error surface.
* 429 honours ``Retry-After`` up to ``RetryPolicy.max_retry_after``; a longer wait is not slept
  through here but raised as :class:`~gatebot.gate.errors.GateRateLimited` so a scheduler can
  come back later.

All sleeping goes through the injected ``sleep`` so tests run instantly and can assert delays.
Logging records method, path, status and attempt — never headers, bodies, keys or voucher codes.
An unreadable answer is described (status, length, where parsing stopped, which field had the wrong
type), never quoted, masked or not: ``order_content`` is free-form, so no list of key names is enough.

Every ``order_content`` and customer account the client sees is handed to :mod:`gatebot.logs`, which
keeps those values out of every log line, whichever library writes it.

Must not import Slack, the scheduler, the store or the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, NoReturn, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from gatebot import logs
from gatebot.gate.errors import (
    GateBadResponse,
    GateError,
    GateOutcomeUnknown,
    GateTimeout,
    GateTransportError,
    error_from_response,
)
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
_SNIPPET_LENGTH = 80
_MESSAGE_LENGTH = 300
# Values that must not reach a log line or an exception, even from a body we could not parse.
_SENSITIVE_VALUE = re.compile(
    r'("(?:voucher_code|code|pin|serial|customer_account|api_key|authorization|password|secret|token)"\s*:\s*)'
    r'("(?:[^"\\]|\\.)*"?|\{[^{}]*\}?|[^,}\]\s]+)',
    re.IGNORECASE,
)


# -- retry policy ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How many attempts a call gets and how long to wait between them.

    ``attempts`` counts the first try (``attempts=1`` never retries). Backoff grows as
    ``base_delay * 2**(n-1)`` capped at ``max_delay``; ``jitter`` spreads it: ``"full"``
    (uniform in ``[0, cap]``), ``"decorrelated"`` (uniform in ``[base, 3 * previous]``, capped)
    or ``"none"`` (deterministic, for tests). A 429's ``Retry-After`` replaces the backoff; one
    longer than ``max_retry_after`` is raised instead of slept through.
    """

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    jitter: Literal["full", "decorrelated", "none"] = "full"
    max_retry_after: float = 30.0
    rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")
        if self.jitter not in ("full", "decorrelated", "none"):
            raise ValueError(f"unknown jitter {self.jitter!r}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A single attempt: for probes and for callers that run their own retry loop."""
        return cls(attempts=1)

    def backoff(self, retry: int, previous: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** max(retry - 1, 0))
        rng = self.rng or random
        if self.jitter == "none":
            return cap
        if self.jitter == "full":
            return float(rng.uniform(0, cap))
        prev = previous if previous is not None and previous > 0 else self.base_delay
        return float(min(self.max_delay, rng.uniform(self.base_delay, max(self.base_delay, prev * 3))))


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
            return Health(ok=False, detail=f"unreachable ({type(exc).__name__}: {_short(str(exc))})")
        ok = response.is_success
        self._attempted("health", ok, _outcome(response.status_code), started)
        detail = f"HTTP {response.status_code}"
        try:
            body = json.loads(response.text, parse_float=Decimal)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("status"), str):
            detail = f"{detail} {_short(body['status'], 40)}"
        log.debug("gate GET /health -> %s", response.status_code)
        return Health(ok=ok, status_code=response.status_code, detail=detail)

    # -- catalog ----------------------------------------------------------------------------------

    async def list_product_types(self) -> list[ProductType]:
        return await self._read("product_types", "product-types", lambda data, where: _parse_list(
            data, ProductType, where))

    async def list_categories(self) -> list[Category]:
        return await self._read("categories", "product-categories", lambda data, where: _parse_list(
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
        return await self._read("products", "products", lambda data, where: _parse_page(
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
        return await self._read("product", path, lambda data, where: _parse_object(
            data, Product, where, wrapper="product"))

    # -- orders -----------------------------------------------------------------------------------

    async def list_orders(
        self, *, page: int = 1, page_size: int = 50, status: str | None = None, product_id: int | None = None
    ) -> Page[Order]:
        params = _page_params(page, page_size)
        params.update(_filters(status=status, product_id=product_id))
        return await self._read("orders", "orders", lambda data, where: _parse_page(
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
        return await self._read("order", path, lambda data, where: _parse_object(
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
            order = _parse_object(data, Order, where, wrapper="order")
            return CreateOrderResult(order=order, replayed=status == 200)

        return await self._call("POST", "create_order", "orders", parse, content=content, idempotency_key=key)

    # -- money ------------------------------------------------------------------------------------

    async def get_balance(self) -> list[Balance]:
        return await self._read("balance", "balance", lambda data, where: _parse_list(data, Balance, where))

    async def list_deposits(
        self, *, page: int = 1, page_size: int = 50, status: str | None = None
    ) -> Page[Deposit]:
        params = _page_params(page, page_size)
        params.update(_filters(status=status))
        return await self._read("deposits", "deposits", lambda data, where: _parse_page(
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
        a non-JSON one (reported to ``on_attempt`` as a failure).

        ``idempotency_key`` marks a create: an unreadable 2xx answer is retried too (the order
        probably exists and the replay will say so), and giving up after any attempt whose
        outcome is unknown raises :class:`GateOutcomeUnknown`.
        """
        is_create = idempotency_key is not None
        url = f"{self._agent_path}/{path}"
        where = f"{method} /{url}"
        headers = {"Authorization": self._api_key.get_secret_value()}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        policy = self.retry
        maybe_processed = False  # some attempt of this create may have reached Gate's order book
        delay: float | None = None
        failure: _Failure | None = None

        for attempt in range(1, policy.attempts + 1):
            if attempt > 1 and delay is not None:
                log.debug("gate %s: retry %d/%d in %.2fs", where, attempt - 1, policy.attempts - 1, delay)
                await self._sleep(delay)
            result = await self._attempt(method, url, where, label, parse, params, content, headers, attempt)
            if not isinstance(result, _Failure):
                return result
            failure = result
            if not failure.retryable or (failure.unreadable and not is_create):
                raise failure.error
            maybe_processed = maybe_processed or (is_create and failure.sent)
            wait = failure.retry_after
            if wait is not None and wait > policy.max_retry_after:
                if failure.error.status == 429:
                    break  # do not sleep that long here: surface it (below) so a scheduler can come back
                wait = None  # a 5xx asking for a long pause: plain backoff, the attempts are bounded
            delay = wait if wait is not None else policy.backoff(attempt, delay)

        assert failure is not None  # only reachable after at least one failed attempt
        if is_create and maybe_processed:
            assert idempotency_key is not None
            log.warning("gate %s: outcome unknown after %d attempt(s)", where, attempt)
            raise GateOutcomeUnknown(
                f"{where}: the order may or may not have been created ({failure.error.message}); "
                "retry later with the same Idempotency-Key and the same body, never a new key",
                idempotency_key=idempotency_key,
                cause=failure.error,
            )
        log.warning("gate %s: giving up after %d attempt(s): %s", where, attempt,
                    type(failure.error).__name__)
        raise failure.error

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
    ) -> R | _Failure:
        """One HTTP exchange, classified. Reports it to ``on_attempt`` exactly once."""
        of = self.retry.attempts
        started = time.perf_counter()
        try:
            response = await self._http.request(method, url, params=params, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            self._attempted(label, False, "timeout", started, attempt)
            log.warning("gate %s: %s on attempt %d/%d", where, type(exc).__name__, attempt, of)
            return _Failure(
                GateTimeout(f"{where}: timed out ({type(exc).__name__}) on attempt {attempt}"),
                sent=not isinstance(exc, _NOT_SENT),
            )
        except httpx.TransportError as exc:
            self._attempted(label, False, "transport_error", started, attempt)
            log.warning("gate %s: %s on attempt %d/%d", where, type(exc).__name__, attempt, of)
            detail = f"{type(exc).__name__} ({_short(str(exc))})"
            return _Failure(
                GateTransportError(f"{where}: {detail} on attempt {attempt}"),
                sent=not isinstance(exc, _NOT_SENT),
            )
        except httpx.DecodingError as exc:  # an answer arrived but its content-encoding is broken
            self._attempted(label, False, "bad_response", started, attempt)
            log.warning("gate %s: undecodable answer on attempt %d/%d", where, attempt, of)
            bad = GateBadResponse(f"{where}: the answer could not be decoded ({_short(str(exc))})")
            return _Failure(bad, unreadable=True)
        except httpx.RequestError as exc:  # anything else httpx may add: assume it may have been sent
            self._attempted(label, False, "transport_error", started, attempt)
            log.warning("gate %s: %s on attempt %d/%d", where, type(exc).__name__, attempt, of)
            return _Failure(GateTransportError(f"{where}: {type(exc).__name__} on attempt {attempt}"))
        status = response.status_code
        log.debug("gate %s -> %d (attempt %d/%d)", where, status, attempt, of)
        if response.is_success:
            try:
                parsed = parse(status, _decode(response, where), where)
            except GateBadResponse as bad:
                self._attempted(label, False, "bad_response", started, attempt)
                log.warning("gate %s: unreadable %d answer on attempt %d/%d", where, status, attempt, of)
                return _Failure(bad, unreadable=True)
            self._attempted(label, True, "ok", started, attempt)
            return parsed
        retry_after = _retry_after(response)
        error = _error(response, retry_after)
        retryable = status == 429 or status >= 500
        # A 4xx is a healthy server saying no; only 5xx/429 count against Gate's health.
        self._attempted(label, not retryable, _outcome(status), started, attempt)
        if retryable:
            log.warning("gate %s -> %d on attempt %d/%d", where, status, attempt, of)
        return _Failure(error, retryable=retryable, sent=status != 429, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A failed attempt. ``sent``: Gate may have processed it. ``unreadable``: a 2xx we could not read."""

    error: GateError
    retryable: bool = True
    sent: bool = True
    unreadable: bool = False
    retry_after: float | None = None


#: Transport failures that happen before the request left: it cannot have been processed.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
             httpx.LocalProtocolError)


# -- helpers --------------------------------------------------------------------------------------


def _outcome(status: int) -> str:
    """The ``on_call`` outcome of an HTTP status."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "rejected" if status >= 300 else "ok"


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


def _short(text: str, limit: int = _SNIPPET_LENGTH) -> str:
    """One line, printable, at most ``limit`` characters, sensitive JSON values masked."""
    masked = _SENSITIVE_VALUE.sub(r'\1"***"', text)
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in masked).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _decode(response: httpx.Response, where: str) -> Any:
    text = response.text
    if not text.strip():
        raise GateBadResponse(f"{where}: HTTP {response.status_code} with an empty body",
                              status=response.status_code)
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError-ish surprises
        # Say what was wrong, never what was there: a body may hold order_content under any key.
        raise GateBadResponse(
            f"{where}: HTTP {response.status_code} body of {len(response.content)} bytes is not valid JSON "
            f"({_json_error(exc)})",
            status=response.status_code,
        ) from None


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    return type(exc).__name__


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (relative to now)."""
    raw = response.headers.get("Retry-After")
    if raw is None or not raw.strip():
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / infinity
        return None
    return max(0.0, seconds)


def _error(response: httpx.Response, retry_after: float | None) -> GateError:
    """The exception for an error answer; survives bodies that are not the documented shape."""
    code: str | None = None
    message: str | None = None
    try:
        body = json.loads(response.text, parse_float=Decimal)
    except ValueError:
        body = None
    if isinstance(body, dict):
        inner = body.get("error")
        source = inner if isinstance(inner, dict) else body
        if isinstance(source.get("code"), str):
            code = source["code"]
        if isinstance(source.get("message"), str):
            message = source["message"]
        elif isinstance(inner, str):
            message = inner
    text = _short(message, _MESSAGE_LENGTH) if message else f"Gate API answered HTTP {response.status_code}"
    if response.status_code == 429 and retry_after is not None:
        text = f"{text} (retry after {retry_after:g} s)"
    return error_from_response(response.status_code, code, text, retry_after=retry_after)


#: Error types whose message is our own text (a validator's ``ValueError``), which may quote the input.
_OWN_MESSAGE_TYPES = frozenset({"value_error", "assertion_error"})


def _describe(exc: ValidationError, limit: int = 3) -> str:
    """Field locations and reasons only: pydantic's own text would quote the (maybe secret) input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False)[:limit]:
        loc = ".".join(str(part) for part in err["loc"]) or "(root)"
        reason = err["type"].replace("_", " ") if err["type"] in _OWN_MESSAGE_TYPES else err["msg"]
        parts.append(f"{loc}: {reason}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _bad_shape(where: str, detail: str) -> NoReturn:
    raise GateBadResponse(f"{where}: unexpected response shape: {detail}")


def _items(data: Any, where: str) -> list[Any]:
    """A list from a bare array or an ``{"items": [...]}`` envelope."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return list(data["items"])
    _bad_shape(where, f"expected a list or {{\"items\": [...]}}, got {_kind(data)}")


def _kind(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(sorted(str(k) for k in data)[:6])
        return f"an object with keys [{keys}]"
    return type(data).__name__


def _validate(model: type[M], item: Any, where: str, label: str) -> M:
    if not isinstance(item, dict):
        _bad_shape(where, f"{label} should be an object, got {_kind(item)}")
    try:
        parsed = model.model_validate(item)
    except ValidationError as exc:
        detail = _describe(exc)
    else:
        if isinstance(parsed, Order) and parsed.order_content:
            logs.remember_content(parsed.order_content, skip_plain_words=True)  # codes: never in a log line
        return parsed
    # Raised outside the except block: the ValidationError (which quotes the input) is not chained.
    _bad_shape(where, f"{label}: {detail}")


def _parse_list(data: Any, model: type[M], where: str) -> list[M]:
    return [_validate(model, item, where, f"item {i}") for i, item in enumerate(_items(data, where))]


def _parse_object(data: Any, model: type[M], where: str, *, wrapper: str) -> M:
    if isinstance(data, dict) and "id" not in data:
        inner = data.get(wrapper, data.get("data"))
        if isinstance(inner, dict):  # lenient: {"order": {...}} / {"data": {...}}
            data = inner
    return _validate(model, data, where, model.__name__)


def _int_field(data: Mapping[str, Any], names: tuple[str, ...], default: int | None) -> int | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str | Decimal):
            try:
                return int(value)
            except (ValueError, ArithmeticError):
                continue
    return default


def _parse_page(data: Any, model: type[M], page: int, page_size: int, where: str) -> Page[M]:
    items = _parse_list(data, model, where)
    if isinstance(data, dict):
        got_page = _int_field(data, ("page",), page) or page
        got_size = _int_field(data, ("pageSize", "page_size"), page_size) or page_size
        total = _int_field(data, ("total", "total_count", "totalCount"), None)
    else:  # a bare array: only what we asked for is known
        got_page, got_size, total = page, page_size, None
    return Page(items=items, page=got_page, page_size=max(got_size, 1), total=total)


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
