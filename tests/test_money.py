"""Money: parsing, minor units, rounding, formatting, refusals."""

from decimal import Decimal

import pytest

from gatebot.money import Money, MoneyError, format_amount, minor_units, parse_decimal


@pytest.mark.parametrize(("value", "expected"), [("12.50", "12.50"), (10, "10.00"), ("10", "10.00"),
                                                 (Decimal("7.1"), "7.10"), ("1,234.50", "1234.50"), (" 3 ", "3.00")])
def test_parse_accepts_strings_ints_and_decimals(value, expected):
    assert Money.parse(value, "USD").amount == Decimal(expected)
    assert str(Money.parse(value, "usd").amount) == expected


@pytest.mark.parametrize("bad", [1.5, float("nan"), "NaN", "inf", "-Infinity", "twelve", "", True, None, [1]])
def test_parse_refuses_floats_nan_infinities_and_junk(bad):
    with pytest.raises(MoneyError):
        Money.parse(bad, "USD")


def test_parse_refuses_more_decimals_than_the_currency_has():
    with pytest.raises(MoneyError, match="at most 2 decimals"):
        Money.parse("1.234", "USD")
    with pytest.raises(MoneyError, match="at most 0 decimals"):
        Money.parse("100.5", "JPY")
    assert Money.parse("1.230", "USD").amount == Decimal("1.23")  # trailing zeros are not extra precision
    assert Money.parse("1.234", "KWD").to_minor() == 1234


def test_minor_units_round_trip():
    assert minor_units("USD") == 2 and minor_units("JPY") == 0 and minor_units("KWD") == 3
    assert Money.parse("12.50", "USD").to_minor() == 1250
    assert Money.from_minor(1250, "USD") == Money.parse("12.50", "USD")
    assert Money.from_minor(500, "JPY").format() == "JPY 500"
    with pytest.raises(MoneyError):
        Money.from_minor(12.5, "USD")  # type: ignore[arg-type]


def test_rounding_is_half_up_to_the_minor_unit():
    assert Money.rounded("12.345", "USD").amount == Decimal("12.35")
    assert Money.rounded("12.344", "USD").amount == Decimal("12.34")
    assert Money.rounded("-0.005", "USD").amount == Decimal("-0.01")
    assert Money.parse("10.00", "USD").times(Decimal("1.25")) == Money.parse("12.50", "USD")
    assert Money.parse("0.99", "USD").times(Decimal("1.125")).amount == Decimal("1.11")  # 1.11375


def test_formatting_for_people_and_for_the_api():
    assert Money.parse("1234.5", "USD").format() == "USD 1,234.50"
    assert str(Money.parse("-12", "EUR")) == "EUR -12.00"
    assert Money.parse("1234567.5", "EUR").as_api() == "1234567.50"


def test_arithmetic_and_comparison_need_the_same_currency():
    usd = Money.parse("10", "USD")
    assert usd + Money.parse("2.5", "USD") == Money.parse("12.50", "USD")
    assert (usd - Money.parse("12", "USD")).is_negative()
    assert usd > Money.parse("9.99", "USD")
    with pytest.raises(MoneyError, match="cannot combine USD with EUR"):
        _ = usd + Money.parse("1", "EUR")
    with pytest.raises(MoneyError):
        usd.times(1.5)  # type: ignore[arg-type]


def test_currency_must_be_an_iso_code():
    with pytest.raises(MoneyError, match="3-letter"):
        Money.parse("1", "DOLLARS")


def test_parse_decimal_names_what_is_wrong():
    with pytest.raises(MoneyError, match="quantity"):
        parse_decimal("abc", what="quantity")


def test_absurdly_large_amounts_are_a_money_error():
    with pytest.raises(MoneyError, match="too large"):
        Money.parse("1E+30", "USD")
    with pytest.raises(MoneyError, match="too large"):
        Money.rounded("1E+40", "USD")


def test_format_amount_is_the_one_display_rule() -> None:
    """Used by the Slack builders (``format_money``) and the CLI's text views alike."""
    assert format_amount(Decimal("1234.5"), "USD", missing="-") == "USD 1,234.50"
    assert format_amount(Decimal("5"), "JPY", missing="-") == "JPY 5"
    assert format_amount(None, "USD", missing="—") == "—"
    assert format_amount(Decimal("12.5"), "U$D", missing="-") == "U$D 12.5"  # an odd code shows, no error
    assert format_amount(Decimal("1E+30"), "USD", missing="-") == "USD 1000000000000000000000000000000"
