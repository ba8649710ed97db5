"""GateClient over a scripted transport: requests it builds, answers it accepts, answers it refuses.

Exact wire details (paths, headers, query strings) and leniency that the sandbox does not exercise
(envelopes vs bare arrays, numbers vs strings, unknown fields, odd error bodies).
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from decimal import Decimal

import httpx
import pytest

from gatebot.gate import (
    CreateOrderRequest,
    GateBadResponse,
    GateClient,
    GateCurrencyMismatch,
    GateError,
    GateHTTPError,
    GateIdempotencyConflict,
    GateInsufficientBalance,
    GateInvalidAmount,
    GateNotFound,
    GateProductInactive,
    GateRateLimited,
    GateRejected,
    GateUnauthorized,
    GateUnavailable,
    GateValidationError,
    RetryPolicy,
)

from .conftest import AGENT, AGENT_PATH, API_KEY, BASE, ORDER, PRODUCT, Harness, Script, Step, err, ok, raw

# -- requests ---------------------------------------------------------------------------------------


async def test_business_calls_send_the_raw_key_and_agent_path(harness: Harness) -> None:
    harness.script.default = ok([])
    await harness.client.list_product_types()
    request = harness.script.requests[0]
    assert request.headers["Authorization"] == API_KEY  # raw: no "Bearer"
    assert request.url.path == f"{AGENT_PATH}/product-types"
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize("base", ["http://gate.test", "http://gate.test/", "http://gate.test/p/q", "http://gate.test/p/q/"])
async def test_base_url_with_or_without_slash_and_prefix(base: str) -> None:
    script = Script(default=ok({"status": "ok"}))
    async with GateClient(base_url=base, api_key=API_KEY, agent_id=AGENT,
                          transport=httpx.MockTransport(script)) as gate:
        await gate.health()
        script.default = ok({"items": []})
        await gate.get_balance()
    prefix = httpx.URL(base).path.rstrip("/")
    assert [r.url.path for r in script.requests] == [f"{prefix}/health", f"{prefix}/agent/{AGENT}/balance"]
    assert "Authorization" not in script.requests[0].headers  # /health is unauthenticated


async def test_every_endpoint_hits_its_documented_path(harness: Harness) -> None:
    s, gate = harness.script, harness.client
    s.steps = [ok([]), ok([]), ok({"items": []}), ok(PRODUCT), ok({"items": []}), ok(ORDER, 201), ok(ORDER),
               ok({"items": []}), ok({"items": []})]
    await gate.list_product_types()
    await gate.list_categories()
    await gate.list_products(page=2, page_size=10, product_type_id=3, category_id=7, is_active=False)
    await gate.get_product(456)
    await gate.list_orders(page=3, page_size=5, status="pending", product_id=456)
    await gate.create_order(CreateOrderRequest(product_id=456), idempotency_key="k-1")
    await gate.get_order(ORDER["id"])  # type: ignore[arg-type]
    await gate.get_balance()
    await gate.list_deposits(status="posted")
    seen = [(r.method, r.url.path.removeprefix(AGENT_PATH), dict(r.url.params)) for r in s.requests]
    assert seen == [
        ("GET", "/product-types", {}),
        ("GET", "/product-categories", {}),
        ("GET", "/products", {"page": "2", "pageSize": "10", "product_type_id": "3", "category_id": "7",
                              "is_active": "false"}),
        ("GET", "/products/456", {}),
        ("GET", "/orders", {"page": "3", "pageSize": "5", "status": "pending", "product_id": "456"}),
        ("POST", "/orders", {}),
        ("GET", f"/orders/{ORDER['id']}", {}),
        ("GET", "/balance", {}),
        ("GET", "/deposits", {"page": "1", "pageSize": "50", "status": "posted"}),
    ]
    assert all(r.headers["Authorization"] == API_KEY for r in s.requests)


async def test_create_sends_key_and_canonical_json_body(harness: Harness) -> None:
    harness.script.default = ok(ORDER, 201)
    body = {"topup_request": {"customer_account": {"steam_login": "p"}, "amount": Decimal("10.00")},
            "product_id": 456, "quantity": 1}
    result = await harness.client.create_order(body, idempotency_key="k-1")
    request = harness.script.requests[0]
    assert request.headers["Idempotency-Key"] == "k-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == (b'{"product_id":456,"quantity":1,"topup_request":{"amount":"10.00",'
                               b'"customer_account":{"steam_login":"p"}}}')
    assert result.replayed is False
    assert result.order.charged_amount == Decimal("12.50")


async def test_create_reports_a_replay_when_gate_answers_200(harness: Harness) -> None:
    harness.script.default = ok(ORDER, 200)
    result = await harness.client.create_order(CreateOrderRequest(product_id=456), idempotency_key="k-1")
    assert result.replayed is True
    assert result.order.id == ORDER["id"]


@pytest.mark.parametrize("key", ["", "   ", "a b", "line\nbreak", "ключ", "x" * 256])
async def test_bad_idempotency_key_is_refused_before_sending(harness: Harness, key: str) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        await harness.client.create_order(CreateOrderRequest(product_id=1), idempotency_key=key)
    assert harness.script.requests == []


@pytest.mark.parametrize("order_id", ["", "../balance", "a/b", "x?y=1"])
async def test_get_order_refuses_ids_that_would_change_the_path(harness: Harness, order_id: str) -> None:
    with pytest.raises(ValueError):
        await harness.client.get_order(order_id)
    assert harness.script.requests == []


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        GateClient(base_url=BASE, api_key=" ", agent_id=AGENT)
    with pytest.raises(ValueError):
        GateClient(base_url=BASE, api_key=API_KEY, agent_id="not-a-uuid")
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


# -- the key stays secret ---------------------------------------------------------------------------


async def test_key_never_appears_in_repr_errors_or_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    steps: list[Step] = [httpx.ReadTimeout] * 4
    harness.script.steps = [*steps, err(401, "unauthorized", "bad key"), raw(200, "garbage")]
    texts = [repr(harness.client), str(vars(harness.client))]
    for call in (harness.client.get_balance, harness.client.get_balance, harness.client.get_balance):
        with pytest.raises(GateError) as info:
            await call()
        texts += [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
    texts.append(caplog.text)
    assert caplog.text  # something was logged
    for text in texts:
        assert API_KEY not in text


# -- leniency ---------------------------------------------------------------------------------------


async def test_lists_accept_bare_arrays_and_envelopes(harness: Harness) -> None:
    types = [{"id": 1, "code": "redeem_card", "name": "Redeem card", "new_field": True}]
    harness.script.steps = [
        ok(types), ok({"items": types}), ok([{"id": 7, "name": "Games", "parent_id": None}]),
        ok({"items": [{"id": 7, "name": "Games", "slug": "games", "parent_id": 2}]}),
    ]
    assert (await harness.client.list_product_types())[0].code == "redeem_card"
    assert (await harness.client.list_product_types())[0].id == 1
    assert (await harness.client.list_categories())[0].parent_id is None
    assert (await harness.client.list_categories())[0].parent_id == 2


async def test_paginated_lists_accept_bare_arrays(harness: Harness) -> None:
    harness.script.default = ok([PRODUCT])
    page = await harness.client.list_products(page=2, page_size=10)
    assert (page.page, page.page_size, page.total) == (2, 10, None)
    assert page.items[0].id == 456
    assert not page.has_more


async def test_amounts_as_numbers_or_strings_become_exact_decimals(harness: Harness) -> None:
    harness.script.steps = [
        raw(200, '{"id": 1, "name": "n", "currency_code": "usd", "price": 0.1, "min_amount": "5", '
                 '"max_amount": 100.10, "step": 1}'),
        raw(200, '{"items": [{"currency_code": "USD", "available": 5000.10, "updated_at": null},'
                 ' {"currency_code": "EUR", "available": "2500.00"}]}'),
    ]
    product = await harness.client.get_product(1)
    assert product.price == Decimal("0.1") and isinstance(product.price, Decimal)
    assert (product.min_amount, product.max_amount) == (Decimal(5), Decimal("100.10"))
    assert product.step == Decimal(1)
    assert product.currency_code == "USD"
    balances = await harness.client.get_balance()
    assert [b.money().format() for b in balances] == ["USD 5,000.10", "EUR 2,500.00"]


async def test_wrapped_single_objects_are_unwrapped(harness: Harness) -> None:
    harness.script.steps = [ok({"order": ORDER}), ok({"data": PRODUCT})]
    assert (await harness.client.get_order("x")).id == ORDER["id"]
    assert (await harness.client.get_product(456)).id == 456


async def test_envelope_paging_fields_are_read_leniently(harness: Harness) -> None:
    harness.script.default = ok({"items": [], "page": "2", "page_size": 20, "total": "45"})
    page = await harness.client.list_deposits(page=2, page_size=20)
    assert (page.page, page.page_size, page.total, page.has_more) == (2, 20, 45, True)


# -- answers we cannot read ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("<html>oops</html>", "not valid JSON"),
        ('{"items": [{"currency_code": "USD", "avail', "not valid JSON"),
        ("", "empty body"),
        ('{"balances": []}', "unexpected response shape"),
        ('"ok"', "unexpected response shape"),
        ('{"items": [{"currency_code": "USD"}]}', "item 0: available"),
        ('{"items": [{"currency_code": "USD", "available": "lots"}]}', "item 0: available"),
        ('{"items": [42]}', "should be an object"),
    ],
)
async def test_unreadable_answers_become_gate_bad_response(
    harness: Harness, body: str, fragment: str
) -> None:
    harness.script.default = raw(200, body)
    with pytest.raises(GateBadResponse, match=fragment) as info:
        await harness.client.get_balance()
    assert "HTTP 200" in str(info.value) or "shape" in str(info.value)
    assert f"GET {AGENT_PATH.removeprefix('/api/v2')}/balance" in str(info.value)
    assert len(harness.script.requests) == 1  # a read with an unreadable answer is not retried
    assert harness.attempts == [("balance", False)]


async def test_bad_response_snippet_is_short_and_masks_secrets(harness: Harness) -> None:
    order = dict(ORDER, order_content={"voucher_code": "SECRET-VOUCHER-1"})
    text = json.dumps({"customer_account": {"email": "who@example.com"}, **order})[:-5]  # truncated
    harness.script.default = raw(200, text)
    with pytest.raises(GateBadResponse) as info:
        await harness.client.get_order("x")
    message = str(info.value)
    assert "SECRET-VOUCHER" not in message and "who@example.com" not in message
    assert len(message) < 250


async def test_wrong_shape_message_does_not_quote_the_input(harness: Harness) -> None:
    harness.script.default = ok(dict(ORDER, status={"voucher_code": "SECRET-VOUCHER-1"}))
    with pytest.raises(GateBadResponse, match="status") as info:
        await harness.client.get_order("x")
    assert "SECRET-VOUCHER" not in str(info.value)


# -- error answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "exc"),
    [
        (400, "validation_error", GateValidationError),
        (400, "invalid_amount", GateInvalidAmount),
        (400, "currency_mismatch", GateCurrencyMismatch),
        (400, "product_inactive", GateProductInactive),
        (400, "insufficient_balance", GateInsufficientBalance),
        (400, "missing_idempotency_key", GateValidationError),
        (400, "brand_new_code", GateRejected),
        (400, None, GateRejected),
        (401, "unauthorized", GateUnauthorized),
        (401, None, GateUnauthorized),
        (404, "not_found", GateNotFound),
        (409, "idempotency_conflict", GateIdempotencyConflict),
        (418, None, GateHTTPError),
    ],
)
async def test_error_answers_map_to_exceptions_without_retry(
    harness: Harness, status: int, code: str | None, exc: type[GateHTTPError]
) -> None:
    harness.script.default = err(status, code, "the server's explanation")
    with pytest.raises(exc) as info:
        await harness.client.create_order(CreateOrderRequest(product_id=456), idempotency_key="k-1")
    assert type(info.value) is exc
    assert info.value.status == status
    assert info.value.code == code
    if code is not None:
        assert "the server's explanation" in str(info.value)
    assert len(harness.script.requests) == 1
    assert harness.sleeps.calls == []
    assert harness.attempts == [("create_order", True)]  # a 4xx is a healthy server saying no


@pytest.mark.parametrize(("status", "code", "exc"), [(429, "rate_limited", GateRateLimited),
                                                     (503, "unavailable", GateUnavailable),
                                                     (500, None, GateUnavailable),
                                                     (502, None, GateUnavailable)])
async def test_retryable_error_answers_map_after_retries(
    harness: Harness, status: int, code: str | None, exc: type[GateHTTPError]
) -> None:
    harness.script.default = err(status, code)
    with pytest.raises(exc) as info:
        await harness.client.get_order("x")
    assert (info.value.status, info.value.code) == (status, code)
    assert len(harness.script.requests) == 4
    assert harness.attempts == [("order", False)] * 4


async def test_non_json_error_body_keeps_status_and_has_no_code(harness: Harness) -> None:
    harness.script.default = raw(404, "<h1>Not Found</h1>")
    with pytest.raises(GateNotFound) as info:
        await harness.client.get_product(9)
    assert info.value.status == 404
    assert "HTTP 404" in str(info.value)


# -- health -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "healthy", "status", "detail"),
    [
        (ok({"status": "ok"}), True, 200, "HTTP 200 ok"),
        (ok({"status": "degraded", "db": "down"}, 503), False, 503, "HTTP 503 degraded"),
        (raw(500, "<html>"), False, 500, "HTTP 500"),
        (raw(200, "fine"), True, 200, "HTTP 200"),
        (httpx.ConnectError, False, None, "unreachable (ConnectError"),
        (httpx.ReadTimeout, False, None, "timed out (ReadTimeout)"),
    ],
)
async def test_health_never_raises(
    harness: Harness, answer: httpx.Response | type[Exception], healthy: bool, status: int | None, detail: str
) -> None:
    harness.script.default = answer
    result = await harness.client.health()
    assert (result.ok, result.status_code) == (healthy, status)
    assert result.detail.startswith(detail)
    assert harness.attempts == [("health", healthy)]
    assert len(harness.script.requests) == 1  # a probe is never retried


async def test_agent_id_accepts_uuid_or_string() -> None:
    a = GateClient(base_url=BASE, api_key=API_KEY, agent_id=AGENT)
    b = GateClient(base_url=BASE, api_key=API_KEY, agent_id=str(AGENT).upper())
    assert a.agent_id == b.agent_id == uuid.UUID(str(AGENT))
    await a.aclose()
    await b.aclose()


async def test_broken_content_encoding_is_a_bad_response(harness: Harness) -> None:
    harness.script.default = httpx.Response(200, headers={"Content-Encoding": "gzip"},
                                            stream=httpx.ByteStream(b"this is not gzip"))
    with pytest.raises(GateBadResponse, match="could not be decoded"):
        await harness.client.get_balance()
    assert harness.attempts == [("balance", False)]
