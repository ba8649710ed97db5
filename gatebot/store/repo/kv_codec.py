"""How a key-value value is written to and read from the ``kv`` table: one pydantic ``TypeAdapter``.

A value is JSON (``None``, bool, int, str, lists, string-keyed objects) plus ``Decimal``,
:class:`~gatebot.money.Money` and aware ``datetime``, which are stored tagged so they come back as
the same types — the format gatebot has always written, so old rows load::

    {"$decimal": "12.50"}   {"$money": ["87.50", "USD"]}   {"$datetime": "2026-11-24T09:00:00+00:00"}

Floats are refused (``TypeError``: use Decimal), as are naive datetimes and non-finite Decimals
(``ValueError``), non-string object keys and anything else (``TypeError``). A one-key object whose
payload does not fit its tag (``{"$decimal": 5}``) stays a plain object, as it always did.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, PlainSerializer, PlainValidator, StrictBool, StrictInt, StrictStr, TypeAdapter
from pydantic_core import PydanticSerializationUnexpectedValue
from typing_extensions import TypeAliasType

from gatebot.money import Money

__all__ = ["TAG_DATETIME", "TAG_DECIMAL", "TAG_MONEY", "dumps", "loads"]

TAG_DECIMAL = "$decimal"
TAG_DATETIME = "$datetime"
TAG_MONEY = "$money"


def _payload(value: Any, tag: str) -> Any:
    if isinstance(value, dict) and len(value) == 1 and tag in value:
        return value[tag]
    raise ValueError(f"not a {tag} value")


def _decimal_in(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        if value.is_finite():
            return value
        raise ValueError("non-finite Decimal")
    payload = _payload(value, TAG_DECIMAL)
    if not isinstance(payload, str):
        raise ValueError(f"{TAG_DECIMAL} payload is not a string")
    return Decimal(payload)


def _money_in(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    payload = _payload(value, TAG_MONEY)
    if not (isinstance(payload, list) and len(payload) == 2):
        raise ValueError(f"{TAG_MONEY} payload is not [amount, currency]")
    return Money(Decimal(payload[0]), payload[1])


def _time_in(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetime")
        return value
    payload = _payload(value, TAG_DATETIME)
    if not isinstance(payload, str):
        raise ValueError(f"{TAG_DATETIME} payload is not a string")
    return datetime.fromisoformat(payload)


def _out(kind: type[Any], tag: str, write: Any) -> Any:
    """A serializer for one tagged type; any other value makes the union try its next member."""

    def serialize(value: Any) -> dict[str, Any]:
        if not isinstance(value, kind):
            raise PydanticSerializationUnexpectedValue(f"not a {kind.__name__}")
        return {tag: write(value)}

    return serialize


class _Refused(Exception):
    """Carries the refusal out of pydantic at once (a ``ValueError`` would make the union go on)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _refuse(value: Any) -> Any:
    """The union's last member: nothing else took ``value``, so say why it cannot be stored."""
    raise _Refused(_why(value))


def _why(value: Any) -> Exception:
    if isinstance(value, float):
        return TypeError("refusing to store a float in kv: use Decimal")
    if isinstance(value, Decimal):
        return ValueError(f"refusing to store a non-finite Decimal ({value}) in kv")
    if isinstance(value, datetime):
        return ValueError("refusing to store a naive datetime in kv: use timezone-aware UTC")
    if isinstance(value, dict):
        key = next((k for k in value if not isinstance(k, str)), None)
        return TypeError(f"kv dict keys must be strings, got {type(key).__name__}")
    return TypeError(f"cannot store {type(value).__name__} in kv (JSON, Decimal, Money, datetime only)")


_Decimal = Annotated[Decimal, PlainValidator(_decimal_in), PlainSerializer(_out(Decimal, TAG_DECIMAL, str))]
_Money = Annotated[Money, PlainValidator(_money_in),
                   PlainSerializer(_out(Money, TAG_MONEY, lambda m: [str(m.amount), m.currency]))]
_Time = Annotated[datetime, PlainValidator(_time_in),
                  PlainSerializer(_out(datetime, TAG_DATETIME, lambda t: t.astimezone(UTC).isoformat()))]
_Unstorable = Annotated[Any, PlainValidator(_refuse)]

if TYPE_CHECKING:
    KVValue = Any
else:
    KVValue = TypeAliasType(
        "KVValue",
        Annotated[
            # Tried in this order; the last member only explains why nothing took the value.
            Union[  # noqa: UP007 - a recursive alias needs the explicit Union
                StrictBool, StrictInt, StrictStr, _Decimal, _Money, _Time,
                list["KVValue"], dict[StrictStr, "KVValue"], _Unstorable, None,
            ],
            Field(union_mode="left_to_right"),
        ],
    )

_ADAPTER: TypeAdapter[Any] = TypeAdapter(KVValue)


def dumps(value: Any) -> str:
    """The stored text of ``value`` (raises ``TypeError``/``ValueError`` for what cannot be stored)."""
    try:
        valid = _ADAPTER.validate_python(value)
    except _Refused as refused:
        raise refused.error from None
    return _ADAPTER.dump_json(valid).decode("utf-8")


def loads(text: str) -> Any:
    """A stored value back, tagged values as their types."""
    return _ADAPTER.validate_json(text)
