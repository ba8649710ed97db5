"""Fixtures the whole test suite shares: databases for the order store, a clean environment, a clock,
the Slack emulator and Gate sandbox processes.

``db_url`` is parametrized over ``sqlite`` (a file in ``tmp_path``) and ``postgres`` (the local server,
``postgresql://postgres@127.0.0.1:5432/test`` unless ``GATEBOT_TEST_POSTGRES_URL`` says otherwise), so
every test that uses it runs on both. Each PostgreSQL test gets a fresh, uniquely named schema (the
connection's ``search_path`` points at it) that is dropped afterwards; the ``postgres`` parameter is
marked ``postgres`` and skipped, with the reason, only when the server cannot be reached (and fails
instead when ``GATEBOT_REQUIRE_POSTGRES=1``, as in CI).

``database`` is a :class:`gatebot.store.db.Database` migrated to head; ``session`` a session on it that
the test commits when it wants to (uncommitted work is rolled back at the end). Migrating is the
expensive part, so it runs once per session: SQLite tests copy a migrated template file, PostgreSQL
tests replay the SQL the migrations render (Alembic's offline mode) into their fresh schema.

Also shared by every package: ``_clean_env`` (no gatebot/Gate/Slack variable from the developer's
shell, an empty working directory; test modules make it autouse), ``clock`` (a fresh
:class:`~gatebot.clock.ManualClock`), ``emulator_server`` (one Slack emulator for the whole run; tests
point it at their own workspace), and ``sandbox_url`` / ``start_sandbox_process`` (the Gate sandbox
in a real process).

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlmodel import Session

from gatebot.clock import ManualClock
from gatebot.store.db import MIGRATIONS_DIR, Database, make_engine, upgrade

if TYPE_CHECKING:
    from gatebot.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
#: Variables the test harness itself reads; ``_clean_env`` keeps them.
HARNESS_VARIABLES = frozenset({"GATEBOT_TEST_POSTGRES_URL", "GATEBOT_REQUIRE_POSTGRES"})

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _configured_postgres_url() -> URL:
    return make_url(os.environ.get("GATEBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)


def postgres_base_url() -> URL:
    """The test server's URL (``GATEBOT_TEST_POSTGRES_URL`` overrides the local default).

    Under pytest-xdist each worker uses its own database beside the configured one (``test_gw0``,
    ``test_gw1``, created on first use and kept for the next run), so nothing a test sees server-wide
    (``pg_stat_activity``, locks) comes from another worker's tests."""
    url = _configured_postgres_url()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return url.set(database=f"{url.database}_{worker}") if worker else url


def _create_worker_database(url: URL) -> None:
    """Create ``url``'s database (a worker's) through the configured one, unless it exists."""
    with psycopg.connect(_libpq_url(_configured_postgres_url()), connect_timeout=3, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)).fetchone():
            return
        for attempt in range(20):
            try:
                conn.execute(f'CREATE DATABASE "{url.database}"')
                return
            except psycopg.errors.DuplicateDatabase:
                return  # another run on this server created it just now
            except psycopg.errors.ObjectInUse:  # template1 busy with another CREATE DATABASE
                if attempt == 19:
                    raise
                time.sleep(0.1)


def _libpq_url(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def postgres_unavailable_reason() -> str | None:
    """``None`` when the test server answers, else why not (checked once per test run)."""
    url = postgres_base_url()
    try:
        if url != _configured_postgres_url():
            _create_worker_database(url)
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
    options = f"-csearch_path={schema} -csynchronous_commit=off"  # a throw-away schema: no WAL flush wait
    if existing:
        options = f"{existing if isinstance(existing, str) else ' '.join(existing)} {options}"
    url = base.update_query_dict({"options": options})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _sqlite_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


@pytest.fixture(scope="session", autouse=True)
def _no_fsync_in_test_databases() -> Iterator[None]:
    """Test databases are throw-away files: SQLite connections made in this process skip fsync
    (``synchronous=OFF``), as PostgreSQL test schemas skip the WAL flush (``synchronous_commit=off``).
    What survives a SIGKILL is unchanged (the OS keeps the pages); the crash test runs real processes."""
    event.listen(Engine, "connect", _sqlite_without_fsync)
    yield
    event.remove(Engine, "connect", _sqlite_without_fsync)


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


@pytest.fixture(scope="session")
def postgres_head_sql() -> str:
    """The SQL ``upgrade`` runs on PostgreSQL (version table included), rendered once by Alembic's
    offline mode from the same migration scripts."""
    rendered = io.StringIO()
    config = Config(output_buffer=rendered)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://")
    command.upgrade(config, "head", sql=True)
    return rendered.getvalue()


@pytest.fixture
def database(request: pytest.FixtureRequest, db_url: str) -> Iterator[Database]:
    """A :class:`Database` on ``db_url``, migrated to the newest schema."""
    url = make_url(db_url)
    migrated = True
    if url.get_backend_name() == "sqlite" and url.database:
        template: Path = request.getfixturevalue("sqlite_head_template")
        shutil.copyfile(template, url.database)  # same bytes `upgrade` would produce, ~100x faster
    elif url.get_backend_name() != "postgresql":
        migrated = False
    engine = make_engine(db_url)
    if url.get_backend_name() == "postgresql":
        sql: str = request.getfixturevalue("postgres_head_sql")
        # One round trip in the test's schema (search_path), ~10x faster than migrating online.
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            conn.autocommit = True  # the script has its own BEGIN/COMMIT
            try:
                conn.execute(sql.encode())
            finally:
                conn.autocommit = False
        finally:
            raw.close()
    if not migrated:
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


@pytest.fixture
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No gatebot, Gate or Slack variable from the developer's shell, and the test's own empty working
    directory (no stray ``.env`` / ``gatebot.toml``). Not autouse: modules and packages that read
    settings opt in (``pytestmark = pytest.mark.usefixtures("_clean_env")``)."""
    for name in list(os.environ):
        if name in HARNESS_VARIABLES:
            continue
        if name.startswith(("SLACK_", "GATE_", "GATEBOT_")) or name in {"DATABASE_URL", "PORT"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at its default start; tests advance it instead of sleeping."""
    return ManualClock()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One Slack emulator for the whole run; a test serves its workspace with ``server.workspace = ws``."""
    from gatebot.emulator import running_emulator

    with running_emulator() as server:
        yield server


StartSandbox = Callable[..., str]


@pytest.fixture
def start_sandbox_process() -> Iterator[StartSandbox]:
    """``start(*command)`` runs a Gate sandbox command (``--port 0``) in a real process and returns the
    URL it prints; every process started is terminated at the end of the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(*command: str) -> str:
        proc = subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, cwd=ROOT)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on " in line, f"the sandbox did not start: {line!r}"
        return line.split("listening on ", 1)[1].split()[0]

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def sandbox_url(start_sandbox_process: StartSandbox) -> str:
    """A Gate sandbox started the way an operator does (``gatebot sandbox``), in a real process."""
    return start_sandbox_process("-m", "gatebot", "sandbox", "--port", "0", "--log-level", "warning")


#: Where ``tick`` starts the system clock the CLI reads.
CLI_T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def tick(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the system clock (what the CLI's core and its sandbox read) forward by some seconds, from
    :data:`CLI_T0`; nothing sleeps."""
    now = [CLI_T0]
    monkeypatch.setattr("gatebot.clock.utcnow", lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    return advance
