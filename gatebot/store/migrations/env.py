"""Alembic environment for the order store (run by ``gatebot.store.db.upgrade``, not by hand).

``db.upgrade`` builds the Alembic config in code and passes an open connection in
``config.attributes["connection"]``; the migrations run inside that connection's transaction and
the version table lives in its current schema. Without a connection (someone running the
``alembic`` CLI against this directory) the URL comes from the ``sqlalchemy.url`` option, and
``--sql`` (offline mode) prints the DDL instead of running it.

Must not import Slack, the scheduler or anything beyond the store's models and engine factory.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from gatebot.store.db import make_engine
from gatebot.store.models import metadata

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can only ALTER by copying
    )


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured: use `gatebot db upgrade`")
    engine = make_engine(url)
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
            context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
