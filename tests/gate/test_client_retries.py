"""Retries, backoff, Retry-After, the create-order outcome rules, and page walking — exact sequences.

The scripted transport plays e.g. "5xx, reset, then 201"; the recording ``sleep`` shows what backoff
was requested without any real waiting.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from gatebot.gate import (
    CreateOrderRequest,
    GateClient,
    GateInsufficientBalance,
    GateOutcomeUnknown,
    GateRateLimited,
    GateTimeout,
    GateTransportError,
    GateUnauthorized,
    GateUnavailable,
    RetryPolicy,
)
from gatebot.gate.client import DEFAULT_TIMEOUT

from .conftest import AGENT, API_KEY, BASE, ORDER, PRODUCT, Harness, Script, Sleeps, Step, err, ok, raw

REQUEST = CreateOrderRequest(product_id=456, external_ref="INV-1001",
                             topup_request={"amount": "10.00", "customer_account": {"steam_login": "p"}})


def steps(*items: Step) -> list[Step]:
    return list(items)


# -- reads ------------------------------------------------------------------------------------------


async def test_read_retries_5xx_and_timeouts_with_growing_backoff(harness: Harness) -> None:
    harness.script.steps = steps(err(503, "unavailable"), httpx.ReadTimeout, httpx.RemoteProtocolError,
                                 ok({"items": []}))
    assert await harness.client.get_balance() == []
    assert len(harness.script.requests) == 4
    assert harness.sleeps.calls == [0.2, 0.4, 0.8]
    assert harness.attempts == [("balance", False)] * 3 + [("balance", True)]


async def test_read_gives_up_with_the_last_error(harness: Harness) -> None:
    harness.script.default = httpx.ReadTimeout
    with pytest.raises(GateTimeout, match="timed out"):
        await harness.client.list_orders()
    assert len(harness.script.requests) == 4
    assert harness.sleeps.calls == [0.2, 0.4, 0.8]


async def test_read_is_not_retried_on_4xx(harness: Harness) -> None:
    harness.script.default = err(401, "unauthorized")
    with pytest.raises(GateUnauthorized):
        await harness.client.get_balance()
    assert len(harness.script.requests) == 1


async def test_retry_after_is_honoured(harness: Harness) -> None:
    harness.script.steps = steps(err(429, "rate_limited", **{"Retry-After": "2"}), ok({"items": []}))
    await harness.client.get_balance()
    assert harness.sleeps.calls == [2.0]


async def test_retry_after_on_503_is_honoured_too(harness: Harness) -> None:
    harness.script.steps = steps(err(503, "unavailable", **{"Retry-After": "3"}), ok([]))
    await harness.client.list_categories()
    assert harness.sleeps.calls == [3.0]


async def test_429_without_retry_after_backs_off(harness: Harness) -> None:
    harness.script.steps = steps(err(429, "rate_limited"), err(429, "rate_limited"), ok([]))
    await harness.client.list_categories()
    assert harness.sleeps.calls == [0.2, 0.4]


async def test_retry_after_beyond_the_cap_is_raised_not_slept(harness: Harness) -> None:
    harness.script.default = err(429, "rate_limited", "slow down", **{"Retry-After": "120"})
    with pytest.raises(GateRateLimited) as info:
        await harness.client.get_balance()
    assert info.value.retry_after == 120
    assert "retry after 120 s" in str(info.value)
    assert harness.sleeps.calls == []
    assert len(harness.script.requests) == 1


async def test_retry_after_as_http_date(harness: Harness) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    harness.script.default = err(429, "rate_limited", **{"Retry-After": later})
    with pytest.raises(GateRateLimited) as info:
        await harness.client.get_balance()
    assert info.value.retry_after is not None and 3500 < info.value.retry_after <= 3600


async def test_rate_limit_exhausted_on_a_read(harness: Harness) -> None:
    harness.script.default = err(429, "rate_limited", **{"Retry-After": "1"})
    with pytest.raises(GateRateLimited) as info:
        await harness.client.get_balance()
    assert info.value.retry_after == 1
    assert harness.sleeps.calls == [1.0, 1.0, 1.0]


async def test_a_failing_attempt_hook_does_not_break_the_call(script: Script, sleeps: Sleeps) -> None:
    def hook(label: str, success: bool) -> None:
        raise RuntimeError("broken hook")

    script.default = ok({"items": []})
    async with GateClient(base_url=BASE, api_key=API_KEY, agent_id=AGENT, sleep=sleeps,
                          transport=httpx.MockTransport(script), on_attempt=hook) as gate:
        assert await gate.get_balance() == []


# -- create_order -----------------------------------------------------------------------------------


async def test_create_retries_with_the_same_key_and_the_same_bytes(harness: Harness) -> None:
    harness.script.steps = steps(err(503, "unavailable"), httpx.RemoteProtocolError, err(500, None),
                                 ok(ORDER, 201))
    result = await harness.client.create_order(REQUEST, idempotency_key="order-42-attempt-1")
    assert result.replayed is False and result.order.id == ORDER["id"]
    assert harness.script.header("Idempotency-Key") == ["order-42-attempt-1"] * 4
    assert len(set(harness.script.bodies())) == 1
    assert harness.attempts == [("create_order", False)] * 3 + [("create_order", True)]


async def test_create_that_was_processed_before_a_reset_comes_back_replayed(harness: Harness) -> None:
    harness.script.steps = steps(httpx.ReadError, ok(ORDER, 200))
    result = await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert result.replayed is True


async def test_create_with_an_unreadable_2xx_is_retried_and_replayed(harness: Harness) -> None:
    harness.script.steps = steps(raw(201, '{"id": "0b7d3c0e-1111'), ok(ORDER, 200))
    result = await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert result.replayed is True
    assert len(set(harness.script.bodies())) == 1


async def test_create_timing_out_every_time_is_outcome_unknown(harness: Harness) -> None:
    harness.script.default = httpx.ReadTimeout
    with pytest.raises(GateOutcomeUnknown) as info:
        await harness.client.create_order(REQUEST, idempotency_key="k-77")
    assert info.value.idempotency_key == "k-77"
    assert isinstance(info.value.cause, GateTimeout)
    assert "same Idempotency-Key" in str(info.value)
    assert len(harness.script.requests) == 4
    assert harness.sleeps.calls == [0.2, 0.4, 0.8]


async def test_create_5xx_every_time_is_outcome_unknown(harness: Harness) -> None:
    harness.script.default = err(503, "unavailable")
    with pytest.raises(GateOutcomeUnknown) as info:
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert isinstance(info.value.cause, GateUnavailable)
    assert info.value.status == 503


async def test_create_429_after_a_timeout_is_still_outcome_unknown(harness: Harness) -> None:
    harness.script.steps = steps(httpx.ReadTimeout)
    harness.script.default = err(429, "rate_limited", **{"Retry-After": "1"})
    with pytest.raises(GateOutcomeUnknown) as info:
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert isinstance(info.value.cause, GateRateLimited)


async def test_create_long_retry_after_after_a_timeout_is_outcome_unknown(harness: Harness) -> None:
    harness.script.steps = steps(httpx.WriteTimeout, err(429, "rate_limited", **{"Retry-After": "600"}))
    with pytest.raises(GateOutcomeUnknown) as info:
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert isinstance(info.value.cause, GateRateLimited) and info.value.cause.retry_after == 600
    assert len(harness.script.requests) == 2


async def test_create_rate_limited_every_time_was_not_created(harness: Harness) -> None:
    harness.script.default = err(429, "rate_limited", **{"Retry-After": "2"})
    with pytest.raises(GateRateLimited) as info:
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert not isinstance(info.value, GateOutcomeUnknown)
    assert harness.sleeps.calls == [2.0, 2.0, 2.0]


async def test_create_that_never_connected_was_not_created(harness: Harness) -> None:
    harness.script.steps = steps(httpx.ConnectError, httpx.ConnectTimeout, httpx.ConnectError)
    harness.script.default = err(429, "rate_limited")
    with pytest.raises(GateRateLimited):
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    harness.script.steps, harness.script.default = [], httpx.ConnectError
    with pytest.raises(GateTransportError) as info:
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert not isinstance(info.value, GateOutcomeUnknown)


async def test_create_is_never_retried_on_other_4xx(harness: Harness) -> None:
    harness.script.steps = steps(httpx.ReadTimeout, err(400, "insufficient_balance"))
    with pytest.raises(GateInsufficientBalance):
        await harness.client.create_order(REQUEST, idempotency_key="k-1")
    assert len(harness.script.requests) == 2


# -- the policy -------------------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter="none")
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=5.0, jitter="full", rng=random.Random(7))
    for n in range(1, 10):
        for _ in range(50):
            assert 0 <= policy.backoff(n) <= min(5.0, 0.2 * 2 ** (n - 1))


def test_decorrelated_jitter_stays_between_base_and_three_times_previous() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=5.0, jitter="decorrelated", rng=random.Random(7))
    previous: float | None = None
    for n in range(1, 40):
        delay = policy.backoff(n, previous)
        assert 0.2 <= delay <= min(5.0, 3 * (previous or 0.2))
        previous = delay


def test_policy_validation_and_defaults() -> None:
    default = RetryPolicy()
    assert (default.attempts, default.base_delay, default.max_delay, default.jitter) == (4, 0.2, 5.0, "full")
    assert RetryPolicy.never().attempts == 1
    for bad in ({"attempts": 0}, {"base_delay": -1.0}, {"jitter": "bogus"}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)
    assert (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read, DEFAULT_TIMEOUT.write, DEFAULT_TIMEOUT.pool) == (
        3.0, 10.0, 10.0, 10.0)


async def test_default_policy_sleeps_are_jittered_within_bounds(script: Script, sleeps: Sleeps) -> None:
    script.default = err(503, "unavailable")
    async with GateClient(base_url=BASE, api_key=API_KEY, agent_id=AGENT,
                          transport=httpx.MockTransport(script), sleep=sleeps) as gate:
        with pytest.raises(GateUnavailable):
            await gate.get_balance()
    assert len(sleeps.calls) == 3
    assert all(0 <= d <= 0.2 * 2**i for i, d in enumerate(sleeps.calls))


async def test_single_attempt_policy_never_sleeps(script: Script, sleeps: Sleeps) -> None:
    script.default = httpx.ReadTimeout
    async with GateClient(base_url=BASE, api_key=API_KEY, agent_id=AGENT,
                          transport=httpx.MockTransport(script), sleep=sleeps,
                          retry=RetryPolicy.never()) as gate:
        with pytest.raises(GateTimeout):
            await gate.get_balance()
        with pytest.raises(GateOutcomeUnknown):
            await gate.create_order(REQUEST, idempotency_key="k-1")
    assert sleeps.calls == []
    assert len(script.requests) == 2


# -- walking pages ----------------------------------------------------------------------------------


def product(i: int) -> dict[str, object]:
    return dict(PRODUCT, id=i, name=f"p{i}")


async def test_iterator_walks_envelope_pages_until_total(harness: Harness) -> None:
    harness.script.steps = steps(*(ok({"items": [product(i) for i in range(p * 3, min(p * 3 + 3, 7))],
                                       "page": p + 1, "pageSize": 3, "total": 7}) for p in range(3)))
    ids = [p.id async for p in harness.client.iter_products(page_size=3, is_active=True)]
    assert ids == list(range(7))
    assert [r.url.params["page"] for r in harness.script.requests] == ["1", "2", "3"]
    assert {r.url.params["pageSize"] for r in harness.script.requests} == {"3"}
    assert {r.url.params["is_active"] for r in harness.script.requests} == {"true"}


async def test_iterator_over_bare_arrays_stops_at_a_short_page(harness: Harness) -> None:
    harness.script.steps = steps(ok([product(1), product(2)]), ok([product(3)]))
    assert [p.id async for p in harness.client.iter_products(page_size=2)] == [1, 2, 3]


async def test_iterator_stops_at_an_empty_page(harness: Harness) -> None:
    harness.script.steps = steps(ok([product(1), product(2)]), ok([]))
    assert [p.id async for p in harness.client.iter_products(page_size=2)] == [1, 2]


async def test_iterator_stops_when_the_server_ignores_paging(harness: Harness) -> None:
    harness.script.default = ok([product(1), product(2)])
    assert [p.id async for p in harness.client.iter_products(page_size=2)] == [1, 2]
    assert len(harness.script.requests) == 2


async def test_iterator_yields_each_id_once_when_items_shift(harness: Harness) -> None:
    orders = [dict(ORDER, id=f"o{i}") for i in range(5)]
    harness.script.steps = steps(ok({"items": orders[0:2], "total": 5, "page": 1, "pageSize": 2}),
                                 ok({"items": orders[1:3], "total": 6, "page": 2, "pageSize": 2}),
                                 ok({"items": orders[3:5], "total": 6, "page": 3, "pageSize": 2}))
    ids = [o.id async for o in harness.client.iter_orders(page_size=2, status="pending")]
    assert ids == ["o0", "o1", "o2", "o3", "o4"]


async def test_deposit_iterator(harness: Harness) -> None:
    deposit = {"id": 1, "currency_code": "USD", "amount": "500.00", "method": "bank_wire", "status": "posted",
               "created_at": "2024-11-01T10:00:00Z", "posted_at": None}
    harness.script.steps = steps(
        ok({"items": [deposit, dict(deposit, id=2)], "total": 3, "page": 1, "pageSize": 2}),
        ok({"items": [dict(deposit, id=3)], "total": 3, "page": 2, "pageSize": 2}),
    )
    assert [d.id async for d in harness.client.iter_deposits(page_size=2, status="posted")] == [1, 2, 3]
