"""Stored formats written before the serialisers moved to pydantic still load, and exact JSON is byte-identical.

``tests/fixtures/stored_formats_v1.json`` was written by the code as it was before (kv rows as stored,
``dumps_exact`` outputs); it is never regenerated. kv rows are inserted raw on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.crypto import dumps_exact
from tests.store.conftest import T0

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "stored_formats_v1.json").read_text("utf-8"))

#: What each kv row held when it was written (tuples come back as lists).
KV_VALUES: dict[str, Any] = {
    "alerts.low_balance": {
        "balance": Money(Decimal("87.50"), "USD"), "threshold": Decimal("10"), "tiny": Decimal("1E-9"),
        "big": Decimal("123456789012345678901234567890.000000001"),
        "since": datetime(2026, 11, 24, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "states": [{"firing": True, "count": 3, "note": None, "who": 'Zoë "q"\n'}], "tuple": [1, 2],
    },
    "cursor.deposits": 1234,
    "plain.text": "hello ✓",
    "plain.none": None,
    "plain.bool": False,
    "money.eur": Money(Decimal("-0.01"), "EUR"),
    "when": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    "list": [Decimal("0"), Decimal("-1.50"), Decimal("2.5E+3"), [], {}],
    "looks.tagged": {"$decimal": 5, "other": "x"},
}

#: The inputs of the ``dumps_exact`` fixture outputs.
EXACT_INPUTS: dict[str, Any] = {
    "body": {"product_id": 1, "currency_code": "USD", "external_ref": "INV-1", "quantity": 2, "test": False},
    "topup": {"product_id": 7, "topup_request": {"amount": "10.00",
                                                 "customer_account": {"phone": "+44 20 7946 0000"}}},
    "decimals": {"a": Decimal("10.00"), "b": Decimal("0.50"), "c": Decimal("1E+2"), "d": Decimal("-0.000001"),
                 "e": Decimal("123456789012345678901234567890.123456789"), "f": Decimal("10"), "g": Decimal("1E-9")},
    "text": {"s": 'é\n"\\\t\u0001\u2028 ✓ 😀', "k\u00e9y": [None, True, False, 0, -5, 2**70]},
    "order": {"z": 1, "a": 2, "m": {"y": [], "b": {}}},
    "tuple": {"t": (1, "x")},
}


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (``Decimal("10") == 10`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, datetime):
        return bool(a == b and a.utcoffset() == b.utcoffset())
    return bool(a == b)


def test_fixture_covers_every_value() -> None:
    assert FIXTURE["kv"].keys() == KV_VALUES.keys()
    assert FIXTURE["dumps_exact"].keys() == EXACT_INPUTS.keys()


@pytest.mark.parametrize("key", sorted(KV_VALUES))
def test_kv_rows_written_before_load_to_equal_values(session: Session, key: str) -> None:
    session.connection().execute(
        text("INSERT INTO kv (key, value, updated_at, version) VALUES (:k, :v, :t, 1)"),
        {"k": key, "v": FIXTURE["kv"][key], "t": T0},
    )
    loaded = repo.kv_get(session, key)
    expected = KV_VALUES[key]
    if key == "alerts.low_balance":  # stored in UTC; the same instant
        expected = {**expected, "since": expected["since"].astimezone(UTC)}
    assert _same(loaded, expected), (loaded, expected)


@pytest.mark.parametrize("key", sorted(KV_VALUES))
def test_kv_rows_written_now_load_the_same(session: Session, key: str) -> None:
    repo.kv_set(session, key, KV_VALUES[key], T0)
    stored = session.connection().execute(text("SELECT value FROM kv WHERE key = :k"), {"k": key}).scalar_one()
    assert _same(json.loads(stored), json.loads(FIXTURE["kv"][key]))  # the same format (old code reads it)


@pytest.mark.parametrize("name", sorted(EXACT_INPUTS))
def test_dumps_exact_is_byte_identical_to_before(name: str) -> None:
    assert dumps_exact(EXACT_INPUTS[name]).encode("utf-8") == FIXTURE["dumps_exact"][name].encode("utf-8")


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ({"a": [datetime(2026, 1, 1)]}, ValueError, "naive datetime"),
        ([1, {"b": Decimal("NaN")}], ValueError, "non-finite Decimal"),
        ({"a": {2: "x"}}, TypeError, "keys must be strings"),
        ([{"a": [0.5]}], TypeError, "float"),
    ],
)
def test_a_nested_unstorable_value_is_named(session: Session, bad: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        repo.kv_set(session, "k", bad, T0)
