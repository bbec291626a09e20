"""Exact money (rating_service.domain.money): integer nanos, one currency, no floats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating_service.domain.money import Money, format_nanos

NANOS = 10**9
INT64_MAX = 2**63 - 1
# Every amount google.type.Money can carry (int64 units and nanos), as a signed count of nanos.
nanos = st.integers(
    min_value=-(INT64_MAX * NANOS + NANOS - 1), max_value=INT64_MAX * NANOS + NANOS - 1
)
# Operands whose sums and products stay within the same range.
operands = st.integers(min_value=-(10**18), max_value=10**18)
currencies = st.sampled_from(["USD", "EUR", "JPY"])


def exact(count: int) -> Decimal:
    """The Decimal value of ``count`` nanos, computed independently of Money."""
    return Decimal(count).scaleb(-9)


@pytest.mark.parametrize(
    ("given_amount", "expected_nanos"),
    [
        ("0.99", 990_000_000),
        ("-1.75", -1_750_000_000),
        ("0.000000001", 1),
        ("12.345678901", 12_345_678_901),
        ("0", 0),
        (3, 3 * NANOS),
        (Decimal("1E+2"), 100 * NANOS),
    ],
)
def test_of_stores_an_amount_of_up_to_9_places_as_exact_nanos(
    given_amount: str | int, expected_nanos: int
) -> None:
    """Strings, ints and Decimals of at most 9 decimal places become whole nanos."""
    money = Money.of(given_amount, "USD")

    assert (money.currency, money.nanos) == ("USD", expected_nanos)


@pytest.mark.parametrize("too_precise", ["0.0000000001", "1.9999999999", "-0.0000000005"])
def test_of_refuses_more_than_9_decimal_places(too_precise: str) -> None:
    """A tenth of a nano cannot be stored, so it is refused rather than rounded."""
    with pytest.raises(ValueError, match="more than 9 decimal places"):
        Money.of(too_precise, "USD")


@given(nanos, currencies)
def test_amount_and_of_round_trip_exactly(count: int, currency: str) -> None:
    """Any count of nanos reads back as its exact Decimal, and of() rebuilds the same Money."""
    money = Money(currency, count)

    assert money.amount == exact(count)
    assert Money.of(money.amount, currency) == money


def test_amount_of_zero_is_decimal_zero() -> None:
    """Zero reads back as Decimal 0 (not a signed or exponent-laden zero)."""
    assert Money.zero("USD").amount == Decimal(0)
    assert str(Money.zero("USD").amount) == "0"


def test_multiplying_99_cents_by_3_is_exactly_2_97() -> None:
    """Where binary floats give 2.9699999999999998, Money gives exactly 2.97."""
    assert Money.of("0.99", "USD") * 3 == Money.of("2.97", "USD")


@given(operands, operands, st.integers(min_value=-(10**6), max_value=10**6), currencies)
def test_add_mul_and_neg_are_exact_integer_arithmetic_on_nanos(
    a: int, b: int, count: int, currency: str
) -> None:
    """Sums, products and negations equal the same arithmetic on exact Decimals."""
    x, y = Money(currency, a), Money(currency, b)

    assert (x + y).amount == exact(a) + exact(b)
    assert (x * count).amount == exact(a) * count
    assert (-x).amount == -exact(a)
    assert (x + -x) == Money.zero(currency)


def test_adding_money_of_two_currencies_is_refused() -> None:
    """USD plus EUR has no meaning, so it raises instead of summing the nanos."""
    with pytest.raises(ValueError, match="currency mismatch"):
        Money.of("1", "USD") + Money.of("1", "EUR")


def test_units_affordable_refuses_a_price_in_another_currency() -> None:
    """Dollars do not buy units priced in euros."""
    with pytest.raises(ValueError, match="currency mismatch"):
        Money.of("10", "USD").units_affordable(Money.of("1", "EUR"))


@pytest.mark.parametrize(
    ("funding", "price", "units"),
    [
        ("99.00", "0.99", 100),
        ("1.00", "0.30", 3),
        ("0.98", "0.99", 0),
        ("100", "0.333333333", 300),
        ("0.999999999", "0.000000001", 999_999_999),
    ],
)
def test_units_affordable_rounds_down_to_whole_units(funding: str, price: str, units: int) -> None:
    """Funding / unit price, rounded down: no fraction of a unit is ever granted."""
    assert Money.of(funding, "USD").units_affordable(Money.of(price, "USD")) == units


@given(st.integers(min_value=0, max_value=10**20), st.integers(min_value=1, max_value=10**12))
def test_units_affordable_never_exceeds_the_funding(funding: int, price: int) -> None:
    """The units granted cost at most the funding, and one more unit would cost more."""
    units = Money("USD", funding).units_affordable(Money("USD", price))

    assert units * price <= funding < (units + 1) * price


@pytest.mark.parametrize("price", ["0", "-0.99"])
def test_units_affordable_refuses_a_price_that_is_not_positive(price: str) -> None:
    """A free or negative unit price would grant unlimited units, so it is refused."""
    with pytest.raises(ValueError, match="must be positive"):
        Money.of("10", "USD").units_affordable(Money.of(price, "USD"))


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (-1_750_000_000, "-1.75"),
        (990_000_000, "0.99"),
        (0, "0"),
        (1_000_000_000, "1"),
        (12_345_678_901, "12.345678901"),
        (100 * NANOS, "100"),
        (10 * NANOS, "10"),
        (1, "0.000000001"),
        (-10, "-0.00000001"),
    ],
)
def test_format_nanos_writes_a_plain_exact_decimal(count: int, text: str) -> None:
    """The proto's posting amounts are plain decimals ("0.99", "100"), never "1E+2"."""
    assert format_nanos(count) == text


@given(nanos)
def test_format_nanos_parses_back_to_the_same_amount(count: int) -> None:
    """The string is exact: read back as a Decimal, it is the same number of nanos."""
    assert Decimal(format_nanos(count)) == exact(count)


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money.of("100", "USD"), "USD 100"),
        (Money.of("-1.75", "EUR"), "EUR -1.75"),
        (Money.of("0.000000001", "USD"), "USD 0.000000001"),
        (Money.zero("USD"), "USD 0"),
    ],
)
def test_str_shows_the_currency_and_a_plain_decimal(money: Money, text: str) -> None:
    """Error messages quote amounts as people write them, never as 1E+2 or 1E-9."""
    assert str(money) == text
