"""SQL helpers the repo modules share: dialect-specific upserts, LIKE escaping, IN-list chunking.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

__all__ = ["IN_CHUNK", "in_chunks", "insert_for", "like_escape"]

#: Bound on ``IN (...)`` list sizes.
IN_CHUNK: Final = 500

T = TypeVar("T")


def in_chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most :data:`IN_CHUNK`, one ``IN (...)`` list each."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def insert_for(s: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` for ``table`` in the session's dialect (both support ``ON CONFLICT``)."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are implemented for PostgreSQL and SQLite, not {dialect}")


def like_escape(text: str) -> str:
    """``text`` with ``\\``, ``%`` and ``_`` escaped for ``LIKE ... ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
