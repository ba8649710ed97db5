"""Engines, sessions and schema migrations for the order store.

What lives here: :func:`make_engine` (SQLite or PostgreSQL, with the connection settings each needs),
:class:`Database` (an engine plus a session factory), and the Alembic entry points used by
``gatebot db upgrade`` and at start-up: :func:`upgrade`, :func:`current_revision`,
:func:`head_revision`, :func:`check_schema` and :func:`prepare_schema` (start-up: SQLite migrates
itself, PostgreSQL is checked). Alembic is configured in code (the migrations ship
inside the package; no ``alembic.ini`` needed). The version table lives in the connection's current
schema (PostgreSQL ``search_path``), so one database can hold several isolated stores.

Nothing connects at import time. Must not import Slack, the scheduler or the Gate client.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "SchemaOutOfDate",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_memory_sqlite",
    "make_engine",
    "normalize_url",
    "prepare_schema",
    "upgrade",
]

log = logging.getLogger(__name__)

#: The Alembic script directory shipped in the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 5000


class SchemaOutOfDate(RuntimeError):
    """The database schema is not the one this code needs (empty, older, or newer than the code).

    ``current`` is the database's revision (``None``: never migrated), ``head`` the code's.
    """

    def __init__(self, current: str | None, head: str, *, known: bool = True) -> None:
        self.current = current
        self.head = head
        if current is None:
            message = f"database schema is at nothing (empty database), code needs {head}: run `gatebot db upgrade`"
        elif known:
            message = f"database schema is at {current}, code needs {head}: run `gatebot db upgrade`"
        else:
            message = (
                f"database schema is at {current}, which this version of gatebot does not know "
                f"(migrated by a newer gatebot?), code needs {head}: run `gatebot db upgrade` "
                "from the matching version"
            )
        super().__init__(message)


def normalize_url(url: str | URL) -> URL:
    """``postgres://`` / ``postgresql://`` -> the psycopg 3 driver; everything else unchanged."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    """An in-memory SQLite URL (nothing on disk)."""
    database = url.database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:") or "mode=memory" in database


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (``sqlite:///path.db`` or ``postgresql://user@host/db``).

    SQLite: the file's directory is created, and every connection gets WAL journaling (readers do not
    block the writer), ``foreign_keys=ON`` and a 5 s ``busy_timeout`` (a second process waits for the
    write lock instead of failing at once). An in-memory database is shared by all sessions of the
    engine. PostgreSQL: the psycopg 3 driver, with ``pool_pre_ping`` so a restarted server or a dropped
    idle connection costs a reconnect, not a failed request.

    Both: ``hide_parameters``, so a failed statement's exception (and any traceback or log line made
    from it) names the SQL but never its values: they can hold customer accounts and voucher codes.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if is_memory_sqlite(parsed):
            kwargs["poolclass"] = StaticPool
        elif parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, hide_parameters=True, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if backend == "postgresql":
        return create_engine(parsed, echo=echo, hide_parameters=True, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://")


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: the next pragma may wait
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


T = TypeVar("T")

#: Worker threads of :meth:`Database.run` on PostgreSQL (SQLite: one).
DB_WORKERS = 4


class Database:
    """An engine and its session factory. Build one in the composition root and pass it down."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, class_=Session, expire_on_commit=False)
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight = 0

    @classmethod
    def from_url(cls, url: str | URL, *, echo: bool = False) -> Database:
        return cls(make_engine(url, echo=echo))

    def new_session(self) -> Session:
        """A session the caller commits and closes (prefer :meth:`session`)."""
        return self._sessions()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends normally, rolls back if it raises.

        Objects stay usable after the block (``expire_on_commit=False``): e.g. read ``order.id`` after
        the commit without another query.
        """
        with self._sessions() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()

    async def run(self, work: Callable[[Session], T], /) -> T:
        """``work(session)`` as one unit of work (like :meth:`session`: commit at the end, rollback if it
        raises), on the store's own worker thread, so the event loop never waits on the database.

        The convention for async code: the database is touched only inside ``await db.run(...)``; the
        synchronous ``with db.session()`` is for synchronous callers (CLI set-up, migrations, tests).
        ``work`` must not await or call back into the loop. Returned rows stay readable after the
        commit (``expire_on_commit=False``). A cancelled caller does not cancel ``work``: once started
        it runs to its commit, which is what an intent written before a Gate request needs.

        SQLite gets one worker (its writes are serialised anyway, and an in-memory database is one
        connection); PostgreSQL a few, within the engine's pool.
        """
        if self._executor is None:
            workers = 1 if self.engine.dialect.name == "sqlite" else DB_WORKERS
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gatebot-db")
        self._in_flight += 1
        try:
            context = contextvars.copy_context()  # log context (and any other) travels with the work
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, context.run, self._unit_of_work, work)
        finally:
            self._in_flight -= 1

    def _unit_of_work(self, work: Callable[[Session], T]) -> T:
        with self.session() as session:
            return work(session)

    @property
    def busy(self) -> bool:
        """Whether a :meth:`run` is in progress (the demo waits for it before it reads the screen)."""
        return self._in_flight > 0

    def upgrade(self, revision: str = "head") -> None:
        upgrade(self.engine, revision)

    def check_schema(self) -> None:
        check_schema(self.engine)

    def dispose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"


# -- migrations -----------------------------------------------------------------------------------------


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (default: the newest), in one transaction."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    log.info("database schema upgraded to %s", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"``: drop everything). For development and rollbacks."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    log.info("database schema downgraded to %s", revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this code ships."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def prepare_schema(engine: Engine) -> None:
    """Make the schema usable: migrate an embedded SQLite store, check any other.

    SQLite is the zero-setup default, so its first use (and the first use after a gatebot upgrade)
    migrates it here: no manual step, and no empty file left behind by a refused start. The check
    and the migration run in one ``BEGIN IMMEDIATE`` transaction, so of two processes starting at
    once one migrates and the other waits, then finds it done. PostgreSQL is only checked
    (:class:`SchemaOutOfDate`): several processes share it, and its migrations are an explicit step
    (``gatebot db upgrade``, the ``release`` phase). A schema newer than the code is never touched.
    """
    if engine.dialect.name != "sqlite":
        check_schema(engine)
        return
    for attempt in range(1, _MIGRATE_ATTEMPTS + 1):
        try:
            _migrate_sqlite(engine)
            return
        except OperationalError as exc:  # SQLite gives up at once on some lock conflicts: wait, start again
            if "locked" not in str(exc.orig) or attempt == _MIGRATE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)


#: How often :func:`prepare_schema` starts again when another process holds the SQLite store's lock.
_MIGRATE_ATTEMPTS = 8


def _migrate_sqlite(engine: Engine) -> None:
    head = head_revision()
    config = _alembic_config()
    with engine.begin() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading the revision
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return
        if current is not None:
            known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
            if current not in known:
                raise SchemaOutOfDate(current, head, known=False)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("SQLite store migrated from %s to %s", current or "nothing", head)


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDate` unless the database is exactly at :func:`head_revision`."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is not None:
        script = ScriptDirectory.from_config(_alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if current not in known:
            raise SchemaOutOfDate(current, head, known=False)
    raise SchemaOutOfDate(current, head)
