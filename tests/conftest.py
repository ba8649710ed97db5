"""Shared fixtures for the whole test suite: databases for the order store.

``db_url`` is parametrized over ``sqlite`` (a file in ``tmp_path``) and ``postgres`` (the local server,
``postgresql://postgres@127.0.0.1:5432/test`` unless ``GATEBOT_TEST_POSTGRES_URL`` says otherwise), so
every test that uses it runs on both. Each PostgreSQL test gets a fresh, uniquely named schema (the
connection's ``search_path`` points at it) that is dropped afterwards; the ``postgres`` parameter is
marked ``postgres`` and skipped, with the reason, only when the server cannot be reached (and fails
instead when ``GATEBOT_REQUIRE_POSTGRES=1``, as in CI).

``database`` is a :class:`gatebot.store.db.Database` migrated to head; ``session`` a session on it that
the test commits when it wants to (uncommitted work is rolled back at the end).

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session

from gatebot.store.db import Database, make_engine, upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> URL:
    """The test server's URL (``GATEBOT_TEST_POSTGRES_URL`` overrides the local default)."""
    return make_url(os.environ.get("GATEBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)


def _libpq_url(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def postgres_unavailable_reason() -> str | None:
    """``None`` when the test server answers, else why not (checked once per test run)."""
    url = postgres_base_url()
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shown = url.render_as_string(hide_password=True)
        return f"PostgreSQL at {shown} is not reachable ({first_line}); set GATEBOT_TEST_POSTGRES_URL"
    return None


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema of the test server (dropped afterwards)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if os.environ.get("GATEBOT_REQUIRE_POSTGRES", "") not in ("", "0"):
            pytest.fail(f"{reason} (GATEBOT_REQUIRE_POSTGRES is set, so this fails instead of skipping)")
        pytest.skip(reason)
    base = postgres_base_url()
    schema = f"gbt_{uuid.uuid4().hex[:12]}"
    admin_url = _libpq_url(base)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    existing = base.query.get("options")
    options = f"-csearch_path={schema}"
    if existing:
        options = f"{existing if isinstance(existing, str) else ' '.join(existing)} {options}"
    url = base.update_query_dict({"options": options})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database URL for an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'gatebot.db'}"
    else:
        yield request.getfixturevalue("postgres_schema_url")


@pytest.fixture(scope="session")
def sqlite_head_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; ``database`` copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "head.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture
def database(request: pytest.FixtureRequest, db_url: str) -> Iterator[Database]:
    """A :class:`Database` on ``db_url``, migrated to the newest schema."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database:
        template: Path = request.getfixturevalue("sqlite_head_template")
        shutil.copyfile(template, url.database)  # same bytes `upgrade` would produce, ~100x faster
        engine = make_engine(db_url)
    else:
        engine = make_engine(db_url)
        upgrade(engine)
    db = Database(engine)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session on ``database``; commit explicitly, anything uncommitted is rolled back at the end."""
    s = database.new_session()
    try:
        yield s
    finally:
        s.close()
