"""Exact conversions between ``decimal.Decimal`` and ``google.type.Money``.

Money never goes through a float, and these functions never go through a
decimal context either: they work on the digits and integers themselves, so
the result does not depend on the caller's ``decimal.getcontext()`` precision
or rounding. They only import the standard library and the Money message, so
the server may use them too.

``google.type.Money`` splits an amount into whole ``units`` and ``nanos``
(billionths) that carry the same sign: USD 0.99 is ``units=0,
nanos=990000000`` and USD -1.75 is ``units=-1, nanos=-750000000``.
"""

from __future__ import annotations

from decimal import Decimal

# googleapis-common-protos ships .pyi stubs without a py.typed marker, so mypy
# only reads them with follow_untyped_imports set for google.rpc and google.type.
from google.type.money_pb2 import Money

__all__ = ["MAX_DECIMAL_PLACES", "NANOS_PER_UNIT", "decimal_to_money", "money_to_decimal"]

MAX_DECIMAL_PLACES = 9
"""Money has nanos, so an amount carries at most this many decimal places."""

NANOS_PER_UNIT = 10**MAX_DECIMAL_PLACES

_INT64_MAX = 2**63 - 1
_MAX_ADJUSTED = len(str(_INT64_MAX)) - 1  # amounts of 1E+19 and more never fit


def decimal_to_money(amount: Decimal, currency_code: str) -> Money:
    """Return ``amount`` as a Money message, exactly.

    Trailing zeros beyond 9 places are harmless (``Decimal("1.5000000000")``
    is 1.5); any non-zero digit beyond them raises ``ValueError`` rather than
    being rounded away. So do NaN, infinities and amounts whose units do not
    fit in an int64. Floats raise ``TypeError``: they are not exact.
    """
    nanos_total = _to_nanos(amount)
    units, nanos = divmod(abs(nanos_total), NANOS_PER_UNIT)
    if units > _INT64_MAX:
        raise ValueError(f"amount {amount} is too large for google.type.Money")
    sign = -1 if nanos_total < 0 else 1
    return Money(currency_code=currency_code, units=sign * units, nanos=sign * nanos)


def money_to_decimal(money: Money) -> Decimal:
    """Return the amount of ``money`` as a Decimal, exactly.

    The result has no trailing zeros after the decimal point (``1.5``, not
    ``1.500000000``) and never an exponent above zero (``100``, not
    ``1E+2``). A malformed message (nanos out of range, or units and nanos of
    opposite signs) raises ``ValueError``: guessing what it meant could move
    money.
    """
    units, nanos = money.units, money.nanos
    if not -NANOS_PER_UNIT < nanos < NANOS_PER_UNIT:
        raise ValueError(f"nanos {nanos} is out of range (-999999999 to 999999999)")
    if (units > 0 and nanos < 0) or (units < 0 and nanos > 0):
        raise ValueError(f"units {units} and nanos {nanos} have opposite signs")
    total = units * NANOS_PER_UNIT + nanos
    digits = str(abs(total))
    exponent = -MAX_DECIMAL_PLACES
    while exponent < 0 and len(digits) > 1 and digits.endswith("0"):
        digits = digits[:-1]
        exponent += 1
    if digits == "0":
        exponent = 0
    return Decimal((1 if total < 0 else 0, tuple(int(d) for d in digits), exponent))


def _to_nanos(amount: Decimal) -> int:
    """Return ``amount`` as a signed whole number of nanos, or raise."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a decimal.Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, not {amount}")
    sign, digit_tuple, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, so never "n", "N" or "F"
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return 0
    # Bound the work by the input's own size: 10**exponent is never computed
    # for absurd exponents such as Decimal("1E-999999999").
    if amount.adjusted() > _MAX_ADJUSTED:
        raise ValueError(f"amount {amount} is too large for google.type.Money")
    significant = digits.rstrip("0")
    if exponent + len(digits) - len(significant) < -MAX_DECIMAL_PLACES:
        raise ValueError(f"amount {amount} has more than {MAX_DECIMAL_PLACES} decimal places")
    shift = exponent + MAX_DECIMAL_PLACES
    scale: int = 10 ** abs(shift)
    nanos = int(digits) * scale if shift >= 0 else int(digits) // scale
    return -nanos if sign else nanos
