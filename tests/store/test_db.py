"""Engines and sessions: SQLite pragmas, URL handling, Database.session() semantics."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session

from gatebot.store import repo
from gatebot.store.crypto import FernetCipher
from gatebot.store.db import Database, make_engine, normalize_url, upgrade
from gatebot.store.models import OrderHistory, OrderStatus
from tests.store.conftest import T0, build_order


def test_sqlite_engine_creates_the_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "gatebot.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
        assert path.exists()
    finally:
        engine.dispose()


def test_in_memory_sqlite_is_shared_by_sessions() -> None:
    db = Database.from_url("sqlite://")
    try:
        upgrade(db.engine)
        with db.session() as s:
            repo.kv_set(s, "k", 1, T0)
        with db.session() as s:
            assert repo.kv_get(s, "k") == 1
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_normalize_url_picks_psycopg(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_postgres_engine_uses_psycopg() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/test")  # no connection is made
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_engine_survives_a_dropped_connection(postgres_schema_url: str) -> None:
    """pool_pre_ping: a pooled connection killed by the server costs a reconnect, not an error."""
    engine = make_engine(postgres_schema_url)
    admin = make_engine(postgres_schema_url)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.begin() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        make_engine("mysql://u@h/db")


def test_repr_hides_password() -> None:
    db = Database(make_engine("postgresql://u:secret-pw@h/db"))
    assert "secret-pw" not in repr(db)
    db.dispose()


def test_session_commits_on_success_and_keeps_objects_usable(database: Database, cipher: FernetCipher) -> None:
    with database.session() as s:
        order = repo.add_order(s, build_order(cipher, 1))
    # expire_on_commit=False: attributes stay readable after the commit, without a session
    assert order.id is not None
    assert order.status is OrderStatus.SUBMITTING
    with database.session() as s:
        assert repo.get_order(s, order.id) is not None


def test_session_rolls_back_when_the_block_raises(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as s:
        repo.kv_set(s, "k", "v", T0)
        raise RuntimeError("boom")
    with database.session() as s:
        assert repo.kv_get(s, "k") is None


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(OrderHistory(order_id=12345, at=T0, to_status=OrderStatus.PENDING, actor="U1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_naive_datetimes_are_refused(session: Session) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        repo.kv_set(session, "k", 1, datetime(2026, 1, 1))
