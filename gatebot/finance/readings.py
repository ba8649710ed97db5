"""The latest balance reading of each currency (``reading:<CUR>`` in the key-value store).

The balance check records them; the daily digest falls back to them when Gate cannot be read.
:data:`StoredMoney` is how a :class:`~gatebot.money.Money` inside a key-value value is validated (the
key-value store itself writes and reads it, tagged).

Every function takes the ``Session`` of the caller's unit of work and never commits.
Must not import Slack, the scheduler or ``gatebot.jobs``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import PlainValidator, TypeAdapter, ValidationError
from sqlmodel import Session

from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.monitoring import kv_keys

__all__ = ["READING_PREFIX", "Reading", "StoredMoney", "StoredTime", "kv_record", "last_readings", "record_readings"]

#: Key-value prefix: one row per currency.
READING_PREFIX = "reading:"


def _is_money(value: Any) -> Money:
    if not isinstance(value, Money):
        raise ValueError(f"expected Money, got {type(value).__name__}")
    return value


def _is_time(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    return value


#: Money as the key-value store hands it back (a :class:`Money`; the store tags it in the row).
StoredMoney = Annotated[Money, PlainValidator(_is_money)]
#: A datetime as the key-value store hands it back (already an aware ``datetime``).
StoredTime = Annotated[datetime, PlainValidator(_is_time)]


def kv_record(value: Any) -> Any:
    """A record dataclass as the key-value store takes it: its fields by name (nested records too),
    Money and datetimes left as they are for the store to tag. (Pydantic's dump would turn a Money,
    itself a dataclass, into a dict and change the stored format.) Read back with a ``TypeAdapter``."""
    if isinstance(value, Money) or not (is_dataclass(value) or isinstance(value, list | tuple | dict)):
        return value
    if isinstance(value, list | tuple):
        return [kv_record(item) for item in value]
    if isinstance(value, dict):
        return {key: kv_record(item) for key, item in value.items()}
    return {f.name: kv_record(getattr(value, f.name)) for f in fields(value)}


@dataclass(frozen=True, slots=True)
class Reading:
    balance: StoredMoney
    at: StoredTime


@cache
def _adapter() -> TypeAdapter[Reading]:
    return TypeAdapter(Reading)


def _reading(raw: Any) -> Reading | None:
    try:
        return _adapter().validate_python(raw)
    except ValidationError:
        return None


def record_readings(s: Session, balances: Iterable[Money], now: datetime) -> dict[str, Reading]:
    """Store the latest balance of each currency; returns the readings they replace."""
    previous: dict[str, Reading] = {}
    for money in balances:
        key = READING_PREFIX + money.currency
        old = _reading(repo.kv_get(s, key))
        if old is not None:
            previous[money.currency] = old
        repo.kv_set(s, key, kv_record(Reading(money, now)), now)
    return previous


def last_readings(s: Session) -> dict[str, Reading]:
    out = {key[len(READING_PREFIX):]: _reading(repo.kv_get(s, key)) for key in kv_keys(s, READING_PREFIX)}
    return {cur: r for cur, r in out.items() if r is not None}
