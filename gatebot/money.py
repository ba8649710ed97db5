"""Money: a ``Decimal`` amount with its ISO-4217 currency.

Everything in gatebot that is money goes through :class:`Money`, never ``float``. Amounts arrive
from the Gate API as strings (``"12.50"``) or, for some product fields, as JSON numbers (``10``);
both parse here. JSON numbers must be decoded with ``parse_float=Decimal`` so no float ever exists.

Must not import Slack, the scheduler or anything else in gatebot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = ["Money", "MoneyError", "format_amount", "minor_units", "parse_decimal"]

#: Currencies whose minor unit is not 2 decimals (ISO 4217). Everything else has 2.
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


class MoneyError(ValueError):
    """A value that is not acceptable as money (float, NaN, too many decimals, wrong currency...)."""


def minor_units(currency: str) -> int:
    """Number of decimals of ``currency``'s minor unit (2 for USD/EUR, 0 for JPY, 3 for KWD)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def _check_currency(currency: str) -> str:
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"currency must be a 3-letter ISO code such as USD, got {currency!r}")
    return code


def parse_decimal(value: Any, *, what: str = "amount") -> Decimal:
    """Parse ``"12.50"``, ``10``, ``"10"`` or a ``Decimal`` into a finite ``Decimal``.

    Floats are refused outright: by the time a value is a float it may already be wrong.
    """
    if isinstance(value, bool):
        raise MoneyError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float):
        raise MoneyError(f"{what} must not be a float ({value!r}); pass a string such as \"12.50\"")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "") if _looks_grouped(value) else value.strip()
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise MoneyError(f"{what} {value!r} is not a number; write it like 12.50") from None
    else:
        raise MoneyError(f"{what} must be a string, int or Decimal, got {type(value).__name__}")
    if not dec.is_finite():
        raise MoneyError(f"{what} must be a finite number, got {value!r}")
    return dec


def _looks_grouped(text: str) -> bool:
    """True for human input like ``1,234.50`` (thousands separators, not a decimal comma)."""
    stripped = text.strip()
    if "," not in stripped:
        return False
    whole = stripped.split(".", 1)[0].lstrip("+-")
    groups = whole.split(",")
    return 1 <= len(groups[0]) <= 3 and all(len(g) == 3 and g.isdigit() for g in groups[1:])


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency.

    Construct with :meth:`parse` (strict: refuses more decimals than the currency has),
    :meth:`from_minor`, or :meth:`rounded` (rounds half-up to the minor unit, for computed charges).
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise MoneyError(f"amount must be a finite Decimal, got {self.amount!r}")
        object.__setattr__(self, "currency", _check_currency(self.currency))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def parse(cls, value: Any, currency: str) -> Money:
        """Parse a user/API value; more decimals than the currency allows is an error."""
        code = _check_currency(currency)
        dec = parse_decimal(value)
        places = minor_units(code)
        exponent = dec.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places and dec != dec.quantize(_quantum(places)):
            raise MoneyError(f"{code} amounts have at most {places} decimals, got {value!r}")
        return cls(_quantize(dec, places, value), code)

    @classmethod
    def rounded(cls, value: Any, currency: str) -> Money:
        """Round a computed value half-up to the currency's minor unit (e.g. a margin)."""
        code = _check_currency(currency)
        dec = parse_decimal(value)
        return cls(_quantize(dec, minor_units(code), value), code)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        if isinstance(minor, bool) or not isinstance(minor, int):
            raise MoneyError(f"minor units must be an int, got {minor!r}")
        code = _check_currency(currency)
        places = minor_units(code)
        return cls(Decimal(minor).scaleb(-places).quantize(_quantum(places)), code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls.from_minor(0, currency)

    # -- conversion ---------------------------------------------------------------------------
    def to_minor(self) -> int:
        places = minor_units(self.currency)
        scaled = self.amount.scaleb(places).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return int(scaled)

    def as_api(self) -> str:
        """The Gate API's DecimalAmount: major units, the currency's decimals, no grouping."""
        return f"{self.amount.quantize(_quantum(minor_units(self.currency)), rounding=ROUND_HALF_UP):f}"

    def format(self) -> str:
        """For people: ``USD 1,234.50`` (negative: ``USD -12.00``)."""
        places = minor_units(self.currency)
        q = self.amount.quantize(_quantum(places), rounding=ROUND_HALF_UP)
        return f"{self.currency} {q:,.{places}f}"

    def __str__(self) -> str:
        return self.format()

    # -- arithmetic ---------------------------------------------------------------------------
    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, factor: int | Decimal) -> Money:
        """Multiply by a quantity or rate, rounding half-up to the minor unit."""
        if isinstance(factor, float | bool):
            raise MoneyError("factor must be an int or Decimal")
        return Money.rounded(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other).amount

    def is_negative(self) -> bool:
        return self.amount < 0


def _quantize(dec: Decimal, places: int, original: Any) -> Decimal:
    try:
        return dec.quantize(_quantum(places), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise MoneyError(f"amount {original!r} is too large") from None


def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def format_amount(amount: Decimal | None, currency: str | None, *, missing: str) -> str:
    """A stored amount for people: ``USD 1,234.50`` (rounded to the currency's minor unit), ``missing``
    when there is none; an odd currency code or a huge amount still shows rather than failing."""
    if amount is None:
        return missing
    try:
        return Money.rounded(amount, currency or "").format()
    except (MoneyError, ArithmeticError):  # ArithmeticError: beyond Decimal's 28 digits (1E+30)
        return f"{currency or ''} {amount:f}".strip()
