"""The key-value table: small JSON state (alert state, cursors, cached balances, drafts).

Writes other processes race for are one atomic upsert (:func:`kv_set`) or compare-and-set on the row's
``version`` (:func:`kv_update`).

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from gatebot.store.models import (
    metadata,
)
from gatebot.store.repo import kv_codec
from gatebot.store.repo._sql import insert_for as _insert


class KVConflict(RuntimeError):
    """``kv_update`` kept losing the race for a key (only under pathological contention)."""


# -- key-value -------------------------------------------------------------------------------------
# Values are written and read by :mod:`gatebot.store.repo.kv_codec` (one pydantic TypeAdapter).

_kv_dumps = kv_codec.dumps
_kv_loads = kv_codec.loads


def kv_get(s: Session, key: str) -> Any:
    """The value under ``key`` (JSON; ``Decimal``, ``Money`` and aware ``datetime`` survive), or ``None``."""
    table = metadata.tables["kv"]
    text = s.connection().execute(table.select().with_only_columns(table.c.value).where(table.c.key == key)).scalar()
    return None if text is None else _kv_loads(text)


def kv_set(s: Session, key: str, value: Any, now: datetime) -> None:
    """Store ``value`` under ``key`` (one atomic upsert; bumps ``version``).

    ``value`` is JSON plus ``Decimal``, :class:`~gatebot.money.Money` and aware ``datetime``, which are
    stored tagged (``{"$decimal": "12.50"}``) so they come back as the same types. Floats are refused.
    """
    table = metadata.tables["kv"]
    text = _kv_dumps(value)
    statement = _insert(s, table).values(key=key, value=text, updated_at=now, version=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "value": statement.excluded.value,
            "updated_at": statement.excluded.updated_at,
            "version": table.c.version + 1,
        },
    )
    s.connection().execute(statement)


def kv_delete(s: Session, key: str) -> bool:
    table = metadata.tables["kv"]
    return s.connection().execute(table.delete().where(table.c.key == key)).rowcount > 0


def kv_update(s: Session, key: str, fn: Callable[[Any], Any], now: datetime, *, attempts: int = 20) -> Any:
    """Read-modify-write ``key`` safely against other processes; returns the new value.

    ``fn`` gets the current value (``None`` when absent) and returns the new one; it may be called more
    than once, so it must not have side effects. PostgreSQL locks the row (``SELECT ... FOR UPDATE``);
    on every dialect the write is also conditional on the ``version`` read, and retried if it lost.
    """
    table = metadata.tables["kv"]
    for _ in range(attempts):
        row = (
            s.connection()
            .execute(
                table.select()
                .with_only_columns(table.c.value, table.c.version)
                .where(table.c.key == key)
                .with_for_update()
            )
            .first()
        )
        if row is None:
            new_value = fn(None)
            inserted = (
                s.connection()
                .execute(
                    _insert(s, table)
                    .values(key=key, value=_kv_dumps(new_value), updated_at=now, version=1)
                    .on_conflict_do_nothing(index_elements=[table.c.key])
                    .returning(table.c.key)  # rowcount of an INSERT is not reliable on every driver
                )
                .first()
            )
            if inserted is not None:
                return new_value
            continue
        new_value = fn(_kv_loads(row.value))
        updated = s.connection().execute(
            table.update()
            .where(table.c.key == key, table.c.version == row.version)
            .values(value=_kv_dumps(new_value), updated_at=now, version=row.version + 1)
        )
        if updated.rowcount == 1:
            return new_value
    raise KVConflict(f"kv_update({key!r}) lost the race {attempts} times")
