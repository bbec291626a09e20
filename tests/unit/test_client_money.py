"""Exact conversions between Decimal and google.type.Money (rating_client._money)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from google.type.money_pb2 import Money
from hypothesis import given
from hypothesis import strategies as st
from rating_client import decimal_to_money, money_to_decimal

INT64_MAX = 2**63 - 1
NANOS = 10**9
# Every amount Money can carry, as a signed count of nanos.
all_nanos = st.integers(min_value=-(INT64_MAX * NANOS + NANOS - 1), max_value=INT64_MAX * NANOS)
amounts = all_nanos.map(lambda n: Decimal((0 if n >= 0 else 1, tuple(map(int, str(abs(n)))), -9)))


def money_of(nanos: int) -> Money:
    units, rest = divmod(abs(nanos), NANOS)
    sign = -1 if nanos < 0 else 1
    return Money(currency_code="USD", units=sign * units, nanos=sign * rest)


@pytest.mark.parametrize(
    ("amount", "units", "nanos"),
    [
        ("0.99", 0, 990_000_000),
        ("-1.75", -1, -750_000_000),
        ("-0.000000001", 0, -1),
        ("12.345678901", 12, 345_678_901),
        ("-9223372036854775807.999999999", -INT64_MAX, -999_999_999),
        ("0", 0, 0),
    ],
)
def test_decimal_to_money_splits_units_and_nanos_with_the_same_sign(
    amount: str, units: int, nanos: int
) -> None:
    """The contract's worked examples come out as documented, sign on both parts."""
    money = decimal_to_money(Decimal(amount), "USD")
    assert (money.currency_code, money.units, money.nanos) == ("USD", units, nanos)


@given(amounts)
def test_decimal_survives_a_round_trip_through_money(amount: Decimal) -> None:
    """Any amount of at most 9 places comes back equal, negative ones included."""
    money = decimal_to_money(amount, "EUR")
    assert money_to_decimal(money) == amount
    assert money.units * money.nanos >= 0


@given(all_nanos)
def test_money_survives_a_round_trip_through_decimal(nanos: int) -> None:
    """Any well-formed Money message comes back field for field."""
    money = money_of(nanos)
    assert decimal_to_money(money_to_decimal(money), "USD") == money


@given(amounts)
def test_conversion_ignores_the_callers_decimal_context(amount: Decimal) -> None:
    """A low-precision decimal context cannot round an amount on the way through."""
    with localcontext() as context:
        context.prec = 3
        assert money_to_decimal(decimal_to_money(amount, "USD")) == amount


@pytest.mark.parametrize("amount", ["0.0000000001", "1.1234567891", "-0.9999999999"])
def test_more_than_nine_decimal_places_are_rejected(amount: str) -> None:
    """An amount that Money cannot hold exactly raises instead of rounding."""
    with pytest.raises(ValueError, match="more than 9 decimal places"):
        decimal_to_money(Decimal(amount), "USD")


def test_trailing_zeros_beyond_nine_places_are_accepted() -> None:
    """Zeros past the ninth place lose nothing, so they are not an error."""
    assert decimal_to_money(Decimal("1.5000000000000"), "USD") == money_of(1_500_000_000)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1E+19", "-1E+999999"])
def test_amounts_money_cannot_carry_are_rejected(amount: str) -> None:
    """NaN, infinities and amounts beyond int64 units raise ValueError."""
    with pytest.raises(ValueError, match=r"finite|too large"):
        decimal_to_money(Decimal(amount), "USD")


def test_floats_are_refused() -> None:
    """A float is never exact, so it is a type error rather than money."""
    with pytest.raises(TypeError):
        decimal_to_money(0.1, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("units", "nanos", "text"),
    [(100, 0, "100"), (1, 500_000_000, "1.5"), (0, 0, "0"), (-1, -750_000_000, "-1.75")],
)
def test_money_to_decimal_drops_trailing_zeros_without_an_exponent(
    units: int, nanos: int, text: str
) -> None:
    """Results print as people write amounts: 1.5 and 100, not 1.500000000 or 1E+2."""
    assert str(money_to_decimal(Money(units=units, nanos=nanos))) == text


@pytest.mark.parametrize(("units", "nanos"), [(1, -1), (-1, 1), (0, NANOS), (0, -NANOS)])
def test_malformed_money_is_rejected(units: int, nanos: int) -> None:
    """Opposite signs or nanos out of range raise rather than guess an amount."""
    with pytest.raises(ValueError, match=r"opposite signs|out of range"):
        money_to_decimal(Money(units=units, nanos=nanos))
