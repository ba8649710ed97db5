"""Unreadable Gate answers are described, never echoed.

``order_content`` is free-form (vendor keys such as ``activation`` or ``redeem_url``), so no mask of
known key names can make a quoted body safe: the client says what was wrong — status, length, where
parsing stopped — and nothing of what was in it. What the job monitor stores (``describe_error``)
and what the client logs follow from that.
"""

from __future__ import annotations

import json
import logging
import traceback

import pytest

from gatebot.gate import CreateOrderRequest, GateBadResponse, GateError, GateOutcomeUnknown, RetryPolicy
from gatebot.jobs import describe_error

from .conftest import ORDER, Harness, ok, raw

CODE = "ACT-7731-QWERTY"  # under a vendor key nobody could list in advance
CONTENT = {"activation": CODE, "how_to": f"enter {CODE} in the store"}


def _texts(exc: GateError) -> list[str]:
    return [str(exc), repr(exc), exc.message, describe_error(exc), "".join(traceback.format_exception(exc))]


@pytest.mark.parametrize("cut", [5, 30, 60])
async def test_truncated_order_is_described_not_echoed(
    harness: Harness, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(dict(ORDER, order_content=CONTENT))[:-cut]
    assert CODE in body
    harness.script.default = raw(200, body)
    with pytest.raises(GateBadResponse) as info:
        await harness.client.get_order("x")
    message = str(info.value)
    assert "HTTP 200" in message and f"{len(body.encode())} bytes" in message and "character" in message
    for text in [*_texts(info.value), caplog.text]:
        assert CODE not in text and "activation" not in text


async def test_non_json_answer_is_described_not_echoed(harness: Harness) -> None:
    harness.script.default = raw(200, f"<html>activation {CODE}</html>")
    with pytest.raises(GateBadResponse) as info:
        await harness.client.get_order("x")
    assert "not valid JSON" in str(info.value)
    assert all(CODE not in text for text in _texts(info.value))


async def test_wrong_shape_names_the_field_not_its_value(harness: Harness) -> None:
    harness.script.default = ok(dict(ORDER, order_content=[CODE], status={"activation": CODE}))
    with pytest.raises(GateBadResponse) as info:
        await harness.client.get_order("x")
    assert "status" in str(info.value)
    assert all(CODE not in text for text in _texts(info.value))


async def test_unreadable_create_answer_is_not_echoed_in_outcome_unknown(harness: Harness) -> None:
    harness.client.retry = RetryPolicy(attempts=2, jitter="none")
    harness.script.default = raw(201, json.dumps(dict(ORDER, order_content=CONTENT))[:-8])
    with pytest.raises(GateOutcomeUnknown) as info:
        await harness.client.create_order(CreateOrderRequest(product_id=456), idempotency_key="k-1")
    assert info.value.cause is not None
    assert all(CODE not in text for text in [*_texts(info.value), *_texts(info.value.cause)])


async def test_error_answer_body_is_not_echoed(harness: Harness) -> None:
    harness.script.default = raw(404, json.dumps({"detail": {"activation": CODE}}))
    with pytest.raises(GateError) as info:
        await harness.client.get_order("x")
    assert all(CODE not in text for text in _texts(info.value))
