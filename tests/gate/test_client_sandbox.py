"""GateClient against the sandbox over REAL loopback HTTP (uvicorn in a thread, a real socket).

Every endpoint, every documented error code, paging, retries that keep the key and the bytes (the
sandbox sees one order), Retry-After, a hanging server meeting a short timeout, an HTML body, a
create that times out and is later replayed. Time is a ManualClock (order completion) and backoff
sleeps are recorded, not slept; the only real waits are the sub-second timeouts being exercised.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from gatebot.gate import (
    CreateOrderRequest,
    GateBadResponse,
    GateClient,
    GateCurrencyMismatch,
    GateError,
    GateIdempotencyConflict,
    GateInsufficientBalance,
    GateInvalidAmount,
    GateNotFound,
    GateOutcomeUnknown,
    GateProductInactive,
    GateRateLimited,
    GateTimeout,
    GateUnauthorized,
    GateUnavailable,
    GateValidationError,
    RetryPolicy,
    TopupRequest,
)
from gatebot.sandbox.server import RunningSandbox, running_sandbox
from gatebot.sandbox.simulator import SandboxConfig

from .conftest import Sleeps

STEAM = CreateOrderRequest(product_id=456, external_ref="INV-1001", topup_request=TopupRequest(
    amount="10.00", customer_account={"steam_login": "player123", "email": "user@example.com"}))
VOUCHER = CreateOrderRequest(product_id=101)  # USD 20 gift card
RETRIES = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0, jitter="none")


@dataclass
class Sent:
    method: str
    path: str
    key: str | None
    body: bytes


class Recorder(httpx.AsyncBaseTransport):
    """A real HTTP transport that notes what went over the wire (and can drop the key header)."""

    def __init__(self, *, drop_idempotency_key: bool = False) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[Sent] = []
        self.drop_idempotency_key = drop_idempotency_key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.drop_idempotency_key:
            del request.headers["Idempotency-Key"]
        self.sent.append(Sent(request.method, request.url.path, request.headers.get("Idempotency-Key"),
                              request.content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Env:
    sandbox: RunningSandbox
    clock: ManualClock
    gate: GateClient
    wire: Recorder
    sleeps: Sleeps
    admin: httpx.AsyncClient
    attempts: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.sandbox.base_url

    async def faults(self, **changes: Any) -> None:
        answer = await self.admin.patch("/_sandbox/faults", json=changes)
        answer.raise_for_status()

    async def orders(self) -> list[dict[str, Any]]:
        answer = await self.admin.get("/_sandbox/orders")
        answer.raise_for_status()
        data = answer.json()
        items: list[dict[str, Any]] = data["items"] if isinstance(data, dict) else data
        return items

    def client(self, **overrides: Any) -> GateClient:
        options: dict[str, Any] = {"base_url": self.url, "api_key": SANDBOX_API_KEY,
                                   "agent_id": SANDBOX_AGENT_ID, "retry": RETRIES, "sleep": self.sleeps}
        options.update(overrides)
        return GateClient(**options)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sandbox(clock: ManualClock) -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxConfig(seed=42, completion_delay=5.0), clock=clock) as running:
        yield running


@pytest.fixture
async def env(sandbox: RunningSandbox, clock: ManualClock) -> AsyncIterator[Env]:
    sandbox.sim.reset()
    wire, sleeps = Recorder(), Sleeps()
    attempts: list[tuple[str, bool]] = []
    gate = GateClient(base_url=sandbox.base_url, api_key=SANDBOX_API_KEY, agent_id=SANDBOX_AGENT_ID,
                      transport=wire, retry=RETRIES, sleep=sleeps,
                      on_attempt=lambda label, ok: attempts.append((label, ok)))
    async with gate, httpx.AsyncClient(base_url=sandbox.base_url) as admin:
        yield Env(sandbox, clock, gate, wire, sleeps, admin, attempts)
    sandbox.sim.reset()


def fresh_key() -> str:
    return f"test-{uuid.uuid4()}"


# -- every endpoint ---------------------------------------------------------------------------------


async def test_health_up_and_degraded(env: Env) -> None:
    assert (await env.gate.health()).ok
    await env.faults(health_down=True)
    down = await env.gate.health()
    assert (down.ok, down.status_code) == (False, 503)
    assert "degraded" in down.detail
    assert env.attempts == [("health", True), ("health", False)]


async def test_health_of_a_server_that_is_not_there() -> None:
    gate = GateClient(base_url=refusing_url(), api_key=SANDBOX_API_KEY, agent_id=SANDBOX_AGENT_ID)
    async with gate:
        result = await gate.health()
    assert not result.ok and result.status_code is None
    assert "unreachable" in result.detail


async def test_catalog(env: Env) -> None:
    types = await env.gate.list_product_types()
    assert {(t.id, t.code) for t in types} == {
        (1, "redeem_card"), (2, "direct_transfer"), (3, "direct_top_up")}
    categories = await env.gate.list_categories()
    assert categories and any(c.parent_id is None for c in categories)
    page = await env.gate.list_products(page_size=5)
    assert len(page.items) == 5 and page.total is not None and page.total > 5 and page.has_more
    steam = await env.gate.get_product(456)
    assert (steam.name, steam.product_type_id, steam.currency_code) == ("Steam Wallet Top Up", 3, "USD")
    assert (steam.price, steam.min_amount, steam.max_amount, steam.step) == (
        Decimal(10), Decimal(5), Decimal(100), Decimal(1))
    assert steam.customer_account_fields
    assert "steam_login" in {f.name for f in steam.customer_account_fields}


async def test_iterating_products_walks_every_page(env: Env) -> None:
    total = (await env.gate.list_products(page_size=1)).total
    assert total is not None
    env.wire.sent.clear()
    products = [p async for p in env.gate.iter_products(page_size=3)]
    assert len(products) == total == len({p.id for p in products})
    pages = [s for s in env.wire.sent if s.path.endswith("/products")]
    assert len(pages) == -(-total // 3) > 2  # ceil(total / 3) requests, several pages
    topups = [p async for p in env.gate.iter_products(product_type_id=3, page_size=2)]
    assert topups and all(p.product_type_id == 3 for p in topups)
    inactive = [p async for p in env.gate.iter_products(is_active=False)]
    assert inactive and not any(p.is_active for p in inactive)


async def test_orders_lifecycle_lists_and_filters(env: Env) -> None:
    before = {b.currency_code: b.available for b in await env.gate.get_balance()}
    created = await env.gate.create_order(STEAM, idempotency_key=fresh_key())
    order = created.order
    assert not created.replayed and order.status == "pending" and not order.is_final
    assert (order.charged_amount, order.balance_before, order.balance_after) == (
        Decimal("12.50"), before["USD"], before["USD"] - Decimal("12.50"))
    assert order.external_ref == "INV-1001"
    assert (await env.gate.get_order(order.id)).status == "pending"
    vouchers = [await env.gate.create_order(VOUCHER, idempotency_key=fresh_key()) for _ in range(4)]

    env.clock.advance(5)
    done = await env.gate.get_order(vouchers[0].order.id)
    assert done.status == "completed" and done.completed_at is not None
    assert done.order_content and "voucher_code" in done.order_content

    listed = [o.id async for o in env.gate.iter_orders(page_size=2)]
    assert listed == [v.order.id for v in reversed(vouchers)] + [order.id]  # newest first, 3 pages
    only_steam = [o.id async for o in env.gate.iter_orders(product_id=456)]
    assert only_steam == [order.id]
    completed = await env.gate.list_orders(status="completed", page_size=50)
    assert completed.total == 5 and all(o.status == "completed" for o in completed.items)
    after = {b.currency_code: b.available for b in await env.gate.get_balance()}
    assert after["USD"] == before["USD"] - Decimal("12.50") - 4 * Decimal("20.00")


async def test_balance_and_deposits(env: Env) -> None:
    balances = {b.currency_code: b for b in await env.gate.get_balance()}
    assert set(balances) >= {"USD", "EUR", "GBP"}
    deposits = [d async for d in env.gate.iter_deposits(page_size=2)]
    assert len(deposits) == (await env.gate.list_deposits()).total and len(deposits) > 2
    assert {d.status for d in deposits} >= {"posted", "pending"}
    posted = [d async for d in env.gate.iter_deposits(status="posted")]
    assert posted and all(d.status == "posted" for d in posted)

    answer = await env.admin.post("/_sandbox/deposits", json={"currency_code": "EUR", "amount": "500.00",
                                                              "status": "posted"})
    answer.raise_for_status()
    newest = (await env.gate.list_deposits(page_size=1)).items[0]
    assert (newest.money().format(), newest.status) == ("EUR 500.00", "posted")
    eur = {b.currency_code: b for b in await env.gate.get_balance()}["EUR"]
    assert eur.available == balances["EUR"].available + Decimal("500.00")


# -- every error code -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "exc", "code"),
    [
        ({"product_id": 999999}, GateValidationError, "validation_error"),
        ({"product_id": 101, "quantity": 0}, GateValidationError, "validation_error"),
        ({"product_id": 456, "topup_request": {"amount": "1000.00", "customer_account": {
            "steam_login": "player123", "email": "user@example.com"}}}, GateInvalidAmount, "invalid_amount"),
        ({"product_id": 101, "currency_code": "EUR"}, GateCurrencyMismatch, "currency_mismatch"),
        ({"product_id": 107}, GateProductInactive, "product_inactive"),
    ],
)
async def test_rejections_map_to_their_exception(env: Env, body: dict[str, Any], exc: type[GateError],
                                                 code: str) -> None:
    with pytest.raises(exc) as info:
        await env.gate.create_order(body, idempotency_key=fresh_key())
    assert (info.value.status, info.value.code) == (400, code)
    assert len(env.wire.sent) == 1  # a 4xx is never retried
    assert await env.orders() == []


async def test_insufficient_balance(env: Env) -> None:
    answer = await env.admin.put("/_sandbox/balance", json={"currency_code": "USD", "available": "1.00"})
    answer.raise_for_status()
    with pytest.raises(GateInsufficientBalance) as info:
        await env.gate.create_order(VOUCHER, idempotency_key="wait-for-deposit")
    assert info.value.code == "insufficient_balance"
    await env.admin.post("/_sandbox/deposits", json={"currency_code": "USD", "amount": "100.00"})
    resumed = await env.gate.create_order(VOUCHER, idempotency_key="wait-for-deposit")  # same key
    assert not resumed.replayed and resumed.order.status == "pending"


async def test_missing_idempotency_key(env: Env) -> None:
    async with env.client(transport=Recorder(drop_idempotency_key=True)) as gate:
        with pytest.raises(GateValidationError) as info:
            await gate.create_order(VOUCHER, idempotency_key="dropped-on-the-way")
    assert (info.value.status, info.value.code) == (400, "missing_idempotency_key")


@pytest.mark.parametrize("overrides", [{"api_key": "not-the-key"}, {"agent_id": uuid.uuid4()}])
async def test_unauthorized(env: Env, overrides: dict[str, Any]) -> None:
    async with env.client(**overrides) as gate:
        with pytest.raises(GateUnauthorized) as info:
            await gate.get_balance()
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    assert "not-the-key" not in str(info.value) and SANDBOX_API_KEY not in str(info.value)
    assert env.sleeps.calls == []


async def test_not_found(env: Env) -> None:
    with pytest.raises(GateNotFound) as info:
        await env.gate.get_order(str(uuid.uuid4()))
    assert (info.value.status, info.value.code) == (404, "not_found")
    with pytest.raises(GateNotFound):
        await env.gate.get_product(999999)


async def test_idempotency_conflict(env: Env) -> None:
    key = fresh_key()
    first = await env.gate.create_order(VOUCHER, idempotency_key=key)
    again = await env.gate.create_order(VOUCHER, idempotency_key=key)
    assert (first.replayed, again.replayed, again.order.id) == (False, True, first.order.id)
    with pytest.raises(GateIdempotencyConflict) as info:
        await env.gate.create_order(CreateOrderRequest(product_id=102), idempotency_key=key)
    assert (info.value.status, info.value.code) == (409, "idempotency_conflict")
    assert len(await env.orders()) == 1


async def test_rate_limited_until_attempts_run_out(env: Env) -> None:
    await env.faults(rate_limit_burst=10, retry_after=1)
    with pytest.raises(GateRateLimited) as info:
        await env.gate.get_balance()
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, "rate_limited", 1)
    assert env.sleeps.calls == [1.0, 1.0, 1.0]


async def test_unavailable_until_attempts_run_out(env: Env) -> None:
    await env.faults(error_rate=1.0)
    with pytest.raises(GateUnavailable) as info:
        await env.gate.list_categories()
    assert (info.value.status, info.value.code) == (503, "unavailable")
    assert env.attempts == [("categories", False)] * 4
    assert env.sleeps.calls == [0.05, 0.1, 0.2]


# -- retries over a real socket ----------------------------------------------------------------------


async def test_retry_after_is_honoured(env: Env) -> None:
    await env.faults(rate_limit_burst=1, retry_after=2)
    assert await env.gate.get_balance()
    assert env.sleeps.calls == [2.0]
    await env.faults(rate_limit_burst=2, retry_after=3)
    result = await env.gate.create_order(VOUCHER, idempotency_key=fresh_key())
    assert not result.replayed
    assert env.sleeps.calls == [2.0, 3.0, 3.0]
    assert len(await env.orders()) == 1


async def test_retry_after_longer_than_the_cap_is_raised(env: Env) -> None:
    await env.faults(rate_limit_burst=1, retry_after=120)
    with pytest.raises(GateRateLimited) as info:
        await env.gate.get_balance()
    assert info.value.retry_after == 120 and env.sleeps.calls == []


async def test_create_retries_through_resets_and_5xx_with_one_key_one_body_one_order(
    env: Env, sandbox: RunningSandbox
) -> None:
    faulted_attempts = 3

    async def sleep(seconds: float) -> None:  # the fault clears once the client has retried enough
        calls.append(seconds)
        if len(calls) == faulted_attempts:
            sandbox.sim.update_faults({"create_error_rate": 0.0})

    keys = [fresh_key() for _ in range(8)]
    results = {}
    async with env.client(transport=env.wire, sleep=sleep) as gate:
        for key in keys:
            calls: list[float] = []
            sandbox.sim.update_faults({"create_error_rate": 1.0})
            results[key] = await gate.create_order(STEAM, idempotency_key=key)

    faults = sandbox.sim.stats()["faults"]
    assert faults["reset"] > 0
    assert faults["reset"] + faults["error_after_processing"] + faults["unavailable"] == 3 * len(keys)
    orders = await env.orders()
    assert sorted(o["idempotency_key"] for o in orders) == sorted(keys)  # exactly one order per key
    for key in keys:
        sent = [s for s in env.wire.sent if s.key == key]
        assert len(sent) == faulted_attempts + 1
        assert len({s.body for s in sent}) == 1  # the same bytes every time
        assert results[key].order.id == next(o["id"] for o in orders if o["idempotency_key"] == key)
    assert any(r.replayed for r in results.values())  # some attempt was processed before it broke


async def test_garbage_body_is_a_bad_response(env: Env) -> None:
    await env.faults(garbage_next=1)
    with pytest.raises(GateBadResponse) as info:
        await env.gate.get_balance()
    assert "HTTP 200" in str(info.value) and "not valid JSON" in str(info.value)
    assert env.attempts == [("balance", False)]
    await env.faults(garbage_next=1)
    created = await env.gate.create_order(VOUCHER, idempotency_key=fresh_key())  # a create retries it
    assert created.order.status == "pending"
    assert len(await env.orders()) == 1


async def test_hanging_server_meets_the_timeout(env: Env) -> None:
    await env.faults(hang_next=1)
    async with env.client(timeout=httpx.Timeout(0.3), retry=RetryPolicy.never()) as gate:
        with pytest.raises(GateTimeout, match="ReadTimeout"):
            await gate.get_balance()
    await env.faults(hang_next=1)
    attempts: list[tuple[str, bool]] = []
    async with env.client(timeout=httpx.Timeout(0.3), on_attempt=lambda *a: attempts.append(a)) as gate:
        assert await gate.get_balance()
    assert attempts == [("balance", False), ("balance", True)]


async def test_create_that_times_out_is_unknown_then_replayed_with_the_same_key(env: Env) -> None:
    key = fresh_key()
    async with SlowProxy(env.url, hold=5.0) as proxy:  # Gate answers at once; the answer arrives late
        slow = env.client(base_url=proxy.url, timeout=httpx.Timeout(0.3), retry=RetryPolicy.never())
        async with slow:
            with pytest.raises(GateOutcomeUnknown) as info:
                await slow.create_order(STEAM, idempotency_key=key)
        await asyncio.wait_for(proxy.answered.wait(), 2.0)  # Gate did answer: the order exists
    assert info.value.idempotency_key == key
    assert isinstance(info.value.cause, GateTimeout)
    assert len(await env.orders()) == 1
    retried = await env.gate.create_order(STEAM, idempotency_key=key)
    assert retried.replayed
    assert [o["id"] for o in await env.orders()] == [retried.order.id]


async def test_create_giving_up_is_unknown_and_the_same_key_settles_it(env: Env) -> None:
    await env.faults(create_error_rate=1.0)
    key = fresh_key()
    with pytest.raises(GateOutcomeUnknown) as info:
        await env.gate.create_order(VOUCHER, idempotency_key=key)
    assert "same Idempotency-Key" in str(info.value)
    assert len(await env.orders()) <= 1
    await env.faults(create_error_rate=0.0)
    settled = await env.gate.create_order(VOUCHER, idempotency_key=key)
    assert [o["id"] for o in await env.orders()] == [settled.order.id]


async def test_concurrent_creates_with_one_key_make_one_order(env: Env) -> None:
    key = fresh_key()
    results = await asyncio.gather(*(env.gate.create_order(VOUCHER, idempotency_key=key) for _ in range(20)))
    assert len({r.order.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert len(await env.orders()) == 1


# -- helpers ------------------------------------------------------------------------------------------


def refusing_url() -> str:
    """A loopback URL on which nothing listens (a port bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class SlowProxy:
    """A loopback TCP proxy that passes requests straight through and holds answers back ``hold`` s.

    A slow network in miniature: the server has processed the request long before the client
    sees a byte of the answer. ``answered`` is set when the first answer byte reaches the proxy.
    """

    def __init__(self, target: str, *, hold: float) -> None:
        url = httpx.URL(target)
        self.target = (url.host, url.port or 80)
        self.hold = hold
        self.answered = asyncio.Event()
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SlowProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
            await asyncio.gather(self._pipe(client_r, server_w, upstream=True),
                                 self._pipe(server_r, client_w, upstream=False))
        finally:
            client_w.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    upstream: bool) -> None:
        try:
            while data := await reader.read(65536):
                if not upstream:
                    self.answered.set()
                    await asyncio.sleep(self.hold)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
