"""``to_json`` writes Decimals as JSON numbers without floats; ``parse_json`` reads them back as Decimals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gatebot.sandbox.simulator import SandboxError, parse_json, to_json


def test_decimals_are_numbers_in_their_shortest_exact_form() -> None:
    text = to_json({"a": Decimal("10.00"), "b": Decimal("0.50"), "c": Decimal("1E+2"), "d": Decimal("9.99")})
    assert text == '{"a":10,"b":0.5,"c":100,"d":9.99}'
    expected = {"a": 10, "b": Decimal("0.5"), "c": 100, "d": Decimal("9.99")}
    assert json.loads(text, parse_float=Decimal) == expected


def test_scalars_containers_and_text() -> None:
    value = {"t": True, "f": False, "n": None, "i": 3, "s": "café \"q\"", "l": [1, (2, 3)], "x": 0.25}
    assert json.loads(to_json(value)) == {"t": True, "f": False, "n": None, "i": 3, "s": "café \"q\"",
                                          "l": [1, [2, 3]], "x": 0.25}
    assert "café" in to_json("café")  # not \u-escaped


def test_sort_keys_gives_a_canonical_form() -> None:
    assert to_json({"b": 1, "a": {"d": 2, "c": 3}}, sort_keys=True) == '{"a":{"c":3,"d":2},"b":1}'
    assert to_json({"q": Decimal("10.0")}, sort_keys=True) == to_json({"q": 10}, sort_keys=True)
    assert to_json({"q": True}) != to_json({"q": 1})


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), float("nan"), {1: "x"}, object()])
def test_what_json_cannot_hold_is_refused(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        to_json(value)


def test_parse_json_reads_decimals_and_refuses_junk() -> None:
    assert parse_json(b'{"amount": 12.50}') == {"amount": Decimal("12.50")}
    for junk in (b"<html>", b'{"a": NaN}', b"\xff\xfe", b"{"):
        with pytest.raises(SandboxError) as info:
            parse_json(junk)
        assert (info.value.status, info.value.code) == (400, "validation_error")


_FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "stored_formats_v1.json").read_text("utf-8"))
_INPUTS: dict[str, Any] = {
    "decimals": {"a": Decimal("10.00"), "b": Decimal("0.50"), "c": Decimal("1E+2"), "d": Decimal("-0.000001"),
                 "e": Decimal("123456789012345678901234567890.123456789"), "f": Decimal("10"), "g": Decimal("1E-9"),
                 "h": Decimal("-0")},
    "floats": {"latency": 0.25, "rate": 1.0, "big": 1e20, "small": 1e-7, "zero": 0.0},
    "text": {"s": 'é\n"\\\t\u0001\u2028 ✓ 😀', "k\u00e9y": [None, True, False, 0, -5, 2**70]},
    "order": {"z": 1, "a": 2, "m": {"y": [], "b": {"d": 1, "c": (2, 3)}}},
}


@pytest.mark.parametrize("name", sorted(_INPUTS))
def test_output_is_byte_identical_to_before(name: str) -> None:
    """Fingerprints saved in sandbox state files compare with ones computed now."""
    assert _FIXTURE["sandbox_to_json"].keys() == _INPUTS.keys()
    assert to_json(_INPUTS[name]) == _FIXTURE["sandbox_to_json"][name]
    assert to_json(_INPUTS[name], sort_keys=True) == _FIXTURE["sandbox_to_json_sorted"][name]
