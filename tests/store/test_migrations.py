"""Migrations: upgrade from empty, schema checks, and models == migrated schema on both dialects."""

from __future__ import annotations

import fnmatch
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, String, inspect, text

from gatebot.store.db import (
    MIGRATIONS_DIR,
    SchemaOutOfDate,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)
from gatebot.store.models import metadata

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _diffs(engine: Engine) -> list[object]:
    with engine.connect() as connection, warnings.catch_warnings():
        # SQLAlchemy cannot reflect SQLite's expression index on lower(external_ref) (0003), and Alembic
        # skips expression indexes when comparing; test_lookup_indexes_exist checks them instead.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", ".*expression-based index")
        dialect = engine.dialect.name

        def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
            """Honour ``Index(...).ddl_if(dialect=...)``, which Alembic's comparison ignores."""
            condition = getattr(obj, "_ddl_if", None)
            wanted = getattr(condition, "dialect", None)
            return wanted is None or wanted == dialect or (isinstance(wanted, tuple) and dialect in wanted)

        def compare_type(ctx: object, inspected: Any, metadata_column: Any, inspected_type: Any,
                         metadata_type: Any) -> bool | None:
            """SQLite ignores a VARCHAR's declared length (0005 widens status to 32 on PostgreSQL only)."""
            if dialect == "sqlite" and isinstance(inspected_type, String) and isinstance(
                    getattr(metadata_type, "impl", metadata_type), String):
                return False
            return None

        context = MigrationContext.configure(connection, opts={"compare_type": compare_type,
                                                               "include_object": include_object})
        return list(compare_metadata(context, metadata))


def test_upgrade_empty_database_to_head(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0006"
    tables = set(inspect(engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}
    check_schema(engine)  # does not raise


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    upgrade(engine)
    assert _diffs(engine) == []


def test_lookup_indexes_exist(engine: Engine) -> None:
    """0003: the case-insensitive external_ref index everywhere, the LIKE-prefix index on PostgreSQL."""
    upgrade(engine)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            names = set(connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
        else:
            names = set(connection.exec_driver_sql("SELECT indexname FROM pg_indexes").scalars())
    assert "ix_orders_external_ref_lower" in names
    assert ("ix_orders_gate_order_id_prefix" in names) is (engine.dialect.name == "postgresql")


def test_comparison_would_notice_a_difference(engine: Engine) -> None:
    """Guards the test above: a schema that differs from the models must produce diffs."""
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_orders_external_ref"))
    diffs = _diffs(engine)
    assert any("ix_orders_external_ref" in repr(diff) for diff in diffs)


def test_check_schema_on_empty_database_says_what_to_run(engine: Engine) -> None:
    with pytest.raises(SchemaOutOfDate) as info:
        check_schema(engine)
    assert info.value.current is None
    assert info.value.head == head_revision()
    assert "empty database" in str(info.value)
    assert "run `gatebot db upgrade`" in str(info.value)


def test_check_schema_on_out_of_date_database(engine: Engine) -> None:
    upgrade(engine, "0001")
    with pytest.raises(SchemaOutOfDate) as info:
        check_schema(engine)
    assert str(info.value) == "database schema is at 0001, code needs 0006: run `gatebot db upgrade`"
    upgrade(engine)
    check_schema(engine)


def test_check_schema_on_database_from_a_newer_version(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match="9999, which this version of gatebot does not know") as info:
        check_schema(engine)
    assert "`gatebot db upgrade`" in str(info.value)


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    upgrade(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert _diffs(engine) == []


@pytest.mark.postgres
def test_postgres_tables_live_in_the_connection_schema(postgres_schema_url: str) -> None:
    engine = make_engine(postgres_schema_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            rows = (
                connection.execute(
                    text(
                        "SELECT table_schema FROM information_schema.tables "
                        "WHERE table_name = 'orders' AND table_schema IN ('public', :schema)"
                    ),
                    {"schema": schema},
                )
                .scalars()
                .all()
            )
        assert schema.startswith("gbt_")
        assert rows == [schema]
        assert "alembic_version" in inspect(engine).get_table_names(schema=schema)
    finally:
        engine.dispose()


def test_every_migration_file_ships_in_the_wheel() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gatebot"]
    package_root = REPO_ROOT / "gatebot"
    files = [
        p.relative_to(package_root).as_posix()
        for p in MIGRATIONS_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert "store/migrations/env.py" in files
    assert "store/migrations/versions/0001_initial.py" in files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert unshipped == []
