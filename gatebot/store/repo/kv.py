"""The key-value table: small JSON state (alert state, cursors, cached balances, drafts).

Writes other processes race for are one atomic upsert (:func:`kv_set`) or compare-and-set on the row's
``version`` (:func:`kv_update`).

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from gatebot.money import Money
from gatebot.store.models import (
    metadata,
)
from gatebot.store.repo._sql import insert_for as _insert


class KVConflict(RuntimeError):
    """``kv_update`` kept losing the race for a key (only under pathological contention)."""


# -- key-value -------------------------------------------------------------------------------------

_TAG_DECIMAL = "$decimal"
_TAG_DATETIME = "$datetime"
_TAG_MONEY = "$money"


def _kv_encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        raise TypeError("refusing to store a float in kv: use Decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"refusing to store a non-finite Decimal ({value}) in kv")
        return {_TAG_DECIMAL: str(value)}
    if isinstance(value, Money):
        return {_TAG_MONEY: [str(value.amount), value.currency]}
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("refusing to store a naive datetime in kv: use timezone-aware UTC")
        return {_TAG_DATETIME: value.astimezone(UTC).isoformat()}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"kv dict keys must be strings, got {type(key).__name__}")
            out[key] = _kv_encode(item)
        return out
    if isinstance(value, list | tuple):
        return [_kv_encode(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in kv (JSON, Decimal, Money, datetime only)")


def _kv_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((tag, payload),) = obj.items()
        if tag == _TAG_DECIMAL and isinstance(payload, str):
            return Decimal(payload)
        if tag == _TAG_DATETIME and isinstance(payload, str):
            return datetime.fromisoformat(payload)
        if tag == _TAG_MONEY and isinstance(payload, list) and len(payload) == 2:
            return Money(Decimal(payload[0]), payload[1])
    return obj


def _kv_dumps(value: Any) -> str:
    return json.dumps(_kv_encode(value), ensure_ascii=False, separators=(",", ":"))


def _kv_loads(text: str) -> Any:
    return json.loads(text, object_hook=_kv_hook, parse_float=Decimal)


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
