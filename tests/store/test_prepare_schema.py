"""Start-up schema handling: an embedded SQLite store migrates itself; PostgreSQL is only checked."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from gatebot.store.db import SchemaOutOfDate, current_revision, head_revision, make_engine, prepare_schema


def test_a_fresh_sqlite_store_migrates_itself(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gatebot.db'}")
    try:
        prepare_schema(engine)
        assert current_revision(engine) == head_revision()
        prepare_schema(engine)  # at head: nothing to do
    finally:
        engine.dispose()


def test_two_processes_starting_at_once_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gatebot.db'}"
    engines = [make_engine(url) for _ in range(4)]
    barrier, errors = threading.Barrier(len(engines)), []

    def start(engine: object) -> None:
        barrier.wait()
        try:
            prepare_schema(engine)  # type: ignore[arg-type]
        except Exception as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == []
        assert current_revision(engines[0]) == head_revision()
    finally:
        for e in engines:
            e.dispose()


def test_a_sqlite_store_from_a_newer_gatebot_is_left_alone(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gatebot.db'}")
    try:
        prepare_schema(engine)
        with engine.begin() as c:
            c.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(SchemaOutOfDate, match="does not know"):
            prepare_schema(engine)
        assert current_revision(engine) == "9999_future"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_is_checked_not_migrated(postgres_schema_url: str) -> None:
    engine = make_engine(postgres_schema_url)
    try:
        with pytest.raises(SchemaOutOfDate, match="run `gatebot db upgrade`"):
            prepare_schema(engine)
        assert current_revision(engine) is None
    finally:
        engine.dispose()
