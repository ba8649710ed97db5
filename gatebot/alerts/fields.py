"""Field types of the stored alert states: how a time, an amount or a counter is written and read.

The states are frozen dataclasses serialised by pydantic (:mod:`gatebot.alerts.codec`); these
``Annotated`` types carry the stored format, which is the one gatebot has always written: times as
ISO 8601 strings in UTC (``2026-11-24T09:00:00+00:00``; a naive time is refused), money as
``{"amount": "12.50", "currency": "USD"}`` (a float amount is refused), counters as non-negative
ints, flags as true/false (no ``1``/``"yes"``).

Must not import anything beyond pydantic, :mod:`gatebot.money` and the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from annotated_types import Ge, MinLen
from pydantic import BeforeValidator, PlainSerializer, PlainValidator, Strict

from gatebot.money import Money, MoneyError

__all__ = ["Count", "Flag", "MoneyField", "Name", "Text", "Times", "UtcTime"]


def _time_in(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO datetime, got {value!r}") from None
    else:
        raise ValueError(f"expected an ISO datetime, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware ISO datetime, got {value!r}")
    return parsed.astimezone(UTC)


def _time_out(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _money_in(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    shape = '{"amount": "12.50", "currency": "USD"}'
    if not isinstance(value, Mapping) or not isinstance(value.get("amount"), str) \
            or not isinstance(value.get("currency"), str):
        raise ValueError(f"expected {shape}, got {value!r}")
    try:
        return Money.parse(value["amount"], value["currency"])
    except MoneyError as exc:
        raise ValueError(f"expected money {shape} ({exc}), got {value!r}") from None


def _money_out(value: Money) -> dict[str, str]:
    return {"amount": value.as_api(), "currency": value.currency}


def _times_in(value: Any) -> Any:
    """``null`` reads as no times; a list becomes the tuple the state holds."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else value


#: An aware datetime, stored as an ISO string in UTC.
UtcTime = Annotated[datetime, PlainValidator(_time_in), PlainSerializer(_time_out)]
#: Money, stored as ``{"amount": "12.50", "currency": "USD"}``.
MoneyField = Annotated[Money, PlainValidator(_money_in), PlainSerializer(_money_out)]
#: A non-negative int (``true`` is not a number here).
Count = Annotated[int, Strict(), Ge(0)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
#: A required, non-empty string (an alert key, a currency, a job name).
Name = Annotated[str, Strict(), MinLen(1)]
#: A list of aware datetimes (the health state's up/down changes).
Times = Annotated[tuple[UtcTime, ...], BeforeValidator(_times_in)]
