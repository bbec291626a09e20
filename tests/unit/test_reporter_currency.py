"""Nanos to Stripe's minor units (rating_service.reporter.currency)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating_service.reporter.currency import THREE_DECIMAL, ZERO_DECIMAL, decimals, minor_units

NANOS = 10**9


@pytest.mark.parametrize(
    ("nanos", "currency", "expected"),
    [
        (NANOS, "usd", 100),
        (990_000_000, "USD", 99),
        (12_340_000_000, "eur", 1_234),
        (1_000 * NANOS, "jpy", 1_000),
        (7 * NANOS, "KRW", 7),
        (1_234_000_000, "kwd", 1_234),
        (5_000_000, "bhd", 5),
        (0, "usd", 0),
        (-1_750_000_000, "usd", -175),
    ],
)
def test_an_amount_on_a_whole_minor_unit_converts_exactly(
    nanos: int, currency: str, expected: int
) -> None:
    """Cents for two-decimal currencies, whole units for zero-decimal ones, thousandths for three."""
    assert minor_units(nanos, currency) == expected


@pytest.mark.parametrize(
    ("nanos", "currency", "expected"),
    [
        (12_345_000_000, "usd", 1_234),  # 1,234.5 cents: to the even neighbour below
        (12_355_000_000, "usd", 1_236),  # 1,235.5 cents: to the even neighbour above
        (12_345_000_001, "usd", 1_235),  # just past half: up
        (12_344_999_999, "usd", 1_234),  # just short of half: down
        (1_500_000_000, "jpy", 2),
        (2_500_000_000, "jpy", 2),
        (1_750_000_000, "jpy", 2),
        (1_234_500_000, "kwd", 1_234),
        (1, "usd", 0),
        (-12_345_000_000, "usd", -1_234),
        (-12_355_000_000, "usd", -1_236),
    ],
)
def test_a_fraction_of_a_minor_unit_is_rounded_half_to_even(
    nanos: int, currency: str, expected: int
) -> None:
    """Stripe cannot represent part of a minor unit, so it is rounded, ties to the even unit."""
    assert minor_units(nanos, currency) == expected


def test_stripe_zero_and_three_decimal_lists_are_the_documented_ones() -> None:
    """Stripe's 16 zero-decimal and 5 three-decimal currencies; everything else has 2 decimals."""
    assert (
        set(
            [
                "BIF",
                "CLP",
                "DJF",
                "GNF",
                "JPY",
                "KMF",
                "KRW",
                "MGA",
                "PYG",
                "RWF",
                "UGX",
                "VND",
                "VUV",
                "XAF",
                "XOF",
                "XPF",
            ]
        )
        == ZERO_DECIMAL
    )
    assert {"BHD", "JOD", "KWD", "OMR", "TND"} == THREE_DECIMAL
    assert [decimals(c) for c in ("xof", "omr", "gbp", "isk")] == [0, 3, 2, 2]


@pytest.mark.parametrize("code", ["", "us", "usdd", "u$d", "12a", "ÚSD"])
def test_a_code_that_is_not_three_letters_is_refused(code: str) -> None:
    """A currency code is three ASCII letters; anything else is a programming error."""
    with pytest.raises(ValueError, match="not an ISO 4217 currency code"):
        minor_units(NANOS, code)


@given(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(["usd", "jpy", "kwd"]),
)
def test_minor_units_match_decimal_half_even_rounding(nanos: int, currency: str) -> None:
    """Integer arithmetic agrees with Decimal's ROUND_HALF_EVEN at any size."""
    with localcontext(prec=80):  # exact at this size: the default 28 digits would round
        exact = Decimal(nanos).scaleb(decimals(currency) - 9)
        expected = exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)

    assert minor_units(nanos, currency) == int(expected)
