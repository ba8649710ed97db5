"""The one exact-JSON encoder: its two settings (the store's sealed bodies, the sandbox's answers)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from gatebot import exact_json


def test_exact_keeps_every_digit_and_insertion_order() -> None:
    value = {"z": Decimal("10.00"), "a": [Decimal("1E+2"), Decimal("123456789012345678901234567890.123456789")]}
    text = exact_json.dumps(value)
    assert text == '{"z":10.00,"a":[1E+2,123456789012345678901234567890.123456789]}'
    assert exact_json.loads(text) == {"z": Decimal("10.00"),
                                      "a": [Decimal("1E+2"), Decimal("123456789012345678901234567890.123456789")]}


def test_normalized_is_canonical_for_fingerprints() -> None:
    def canon(v: Any) -> str:
        return exact_json.dumps(v, decimals="normalized", floats=True, sort_keys=True)

    assert canon({"b": Decimal("10.0"), "a": Decimal("0.50")}) == '{"a":0.5,"b":10}'
    assert canon({"q": Decimal("10.0")}) == canon({"q": 10})
    assert canon({"latency": 0.25}) == '{"latency":0.25}'


def test_text_is_written_like_the_standard_library() -> None:
    value = {"s": 'é\n"\\\t\u0001\u2028 ✓ 😀', "k": [None, True, False, 0, -5, 2**70]}
    assert exact_json.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    ("value", "floats", "error"),
    [
        ({"amount": 12.5}, False, TypeError),
        ({"x": float("nan")}, True, ValueError),
        ({"x": Decimal("NaN")}, True, ValueError),
        ({"x": Decimal("-Infinity")}, False, ValueError),
        ({1: "key"}, False, TypeError),
        ({"x": object()}, True, TypeError),
    ],
)
def test_refusals(value: Any, floats: bool, error: type[Exception]) -> None:
    with pytest.raises(error):
        exact_json.dumps(value, floats=floats)


@pytest.mark.parametrize("junk", ['{"a": NaN}', '[Infinity]', "{oops"])
def test_loads_refuses_what_is_not_json(junk: str) -> None:
    with pytest.raises(ValueError):
        exact_json.loads(junk)
