"""Key-value store: exact JSON round trips, atomic set, and read-modify-write that never loses updates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.db import Database
from tests.store.conftest import T0


def _version(session: Session, key: str) -> int:
    return int(session.connection().execute(text("SELECT version FROM kv WHERE key = :k"), {"k": key}).scalar_one())


def test_missing_key_is_none(session: Session) -> None:
    assert repo.kv_get(session, "nope") is None


def test_round_trip_keeps_types(database: Database, session: Session) -> None:
    value = {
        "balance": Money(Decimal("87.50"), "USD"),
        "threshold": Decimal("10"),
        "tiny": Decimal("1E-9"),
        "since": datetime(2026, 11, 24, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "states": [{"firing": True, "count": 3, "note": None, "who": "Zoë"}],
        "tuple": (1, 2),
    }
    repo.kv_set(session, "alerts.low_balance", value, T0)
    session.commit()
    with database.session() as s:
        loaded = repo.kv_get(s, "alerts.low_balance")
    assert loaded["balance"] == Money(Decimal("87.50"), "USD")
    assert isinstance(loaded["threshold"], Decimal) and str(loaded["threshold"]) == "10"
    assert str(loaded["tiny"]) == "1E-9"
    assert loaded["since"] == datetime(2026, 11, 24, 9, 0, tzinfo=UTC) and loaded["since"].tzinfo == UTC
    assert loaded["states"] == [{"firing": True, "count": 3, "note": None, "who": "Zoë"}]
    assert loaded["tuple"] == [1, 2]


@pytest.mark.parametrize("scalar", [None, True, 0, -5, "text", [], {}])
def test_plain_json_values(session: Session, scalar: Any) -> None:
    repo.kv_set(session, "k", scalar, T0)
    assert repo.kv_get(session, "k") == scalar


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (1.5, TypeError),
        ({"nested": [0.1]}, TypeError),
        (datetime(2026, 1, 1), ValueError),
        ({1: "int key"}, TypeError),
        (object(), TypeError),
        (Decimal("Infinity"), ValueError),
    ],
)
def test_unstorable_values_are_refused(session: Session, bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        repo.kv_set(session, "k", bad, T0)


def test_set_overwrites_and_bumps_version(session: Session) -> None:
    repo.kv_set(session, "k", "a", T0)
    assert _version(session, "k") == 1
    repo.kv_set(session, "k", "b", T0 + timedelta(seconds=1))
    assert repo.kv_get(session, "k") == "b"
    assert _version(session, "k") == 2


def test_delete(session: Session) -> None:
    repo.kv_set(session, "k", 1, T0)
    assert repo.kv_delete(session, "k") is True
    assert repo.kv_delete(session, "k") is False
    assert repo.kv_get(session, "k") is None


def test_update_creates_then_modifies(session: Session) -> None:
    assert repo.kv_update(session, "count", lambda v: (v or 0) + 1, T0) == 1
    assert repo.kv_update(session, "count", lambda v: (v or 0) + 1, T0) == 2
    assert repo.kv_get(session, "count") == 2
    assert _version(session, "count") == 2


def test_update_retries_when_another_writer_inserts_first(database: Database, session: Session) -> None:
    seen: list[Any] = []

    def bump(value: Any) -> int:
        seen.append(value)
        if len(seen) == 1:  # someone else creates the key between our read and our write
            with database.session() as other:
                repo.kv_set(other, "count", 10, T0)
        return (value or 0) + 1

    assert repo.kv_update(session, "count", bump, T0) == 11
    session.commit()
    assert seen == [None, 10]
    assert repo.kv_get(session, "count") == 11


def test_update_never_loses_a_concurrent_write(database: Database, session: Session) -> None:
    repo.kv_set(session, "count", 0, T0)
    session.commit()
    seen: list[Any] = []

    def interfere() -> None:
        with database.session() as other:
            if other.get_bind().dialect.name == "postgresql":
                # the row is locked FOR UPDATE by our read: another writer cannot slip in
                other.connection().execute(text("SET LOCAL lock_timeout = '100ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    repo.kv_set(other, "count", 10, T0)
                other.rollback()
            else:
                # SQLite: the other write lands; our version check notices and re-reads
                repo.kv_set(other, "count", 10, T0)

    def bump(value: int) -> int:
        seen.append(value)
        if len(seen) == 1:
            interfere()
        return value + 1

    result = repo.kv_update(session, "count", bump, T0)
    session.commit()
    expected = 1 if session.get_bind().dialect.name == "postgresql" else 11
    assert result == expected
    assert repo.kv_get(session, "count") == expected


def test_concurrent_updates_from_threads_add_up(database: Database) -> None:
    threads, rounds = 4, 5
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(rounds):
                with database.session() as s:
                    repo.kv_update(s, "hits", lambda v: (v or 0) + 1, T0)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert errors == []
    with database.session() as s:
        assert repo.kv_get(s, "hits") == threads * rounds
