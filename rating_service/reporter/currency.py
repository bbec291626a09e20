"""Exact amounts (nanos) to the minor units Stripe's API counts money in.

The ledger keeps money as integer nanos (1e-9 of the currency's major unit,
``google.type.Money``'s precision); Stripe takes integers of the currency's
minor unit: cents for ``usd``, whole yen for ``jpy`` (a *zero-decimal*
currency), thousandths of a dinar for ``kwd`` (a *three-decimal* one). The
lists below are Stripe's (docs.stripe.com/currencies, "Zero-decimal" and
"Three-decimal"); every other currency has two decimals.

Worked examples: 12.345 USD is 12,345,000,000 nanos and 1,234.5 cents, which
Stripe cannot represent: it is rounded half to even, to 1,234 cents
(12.355 USD gives 1,236). 1.75 JPY (1,750,000,000 nanos) is 2 yen;
1.2345 KWD (1,234,500,000 nanos) is 1,234 fils. Half to even is used so that
rounding many amounts does not drift one way; the amounts the reporter sends
(a bucket's units x the unit price) normally land on a whole minor unit.

Stripe documents further rules for some currencies that this conversion does
not apply, because they constrain charges and payouts rather than billing
credits: ``isk`` is sent with two decimals but must be a whole krona
(a multiple of 100), ``huf`` and ``twd`` payouts in whole units, and the
three-decimal ones in charges must end in 0.
"""

from __future__ import annotations

ZERO_DECIMAL = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
        "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
"""Currencies Stripe counts in whole units (no minor unit)."""

THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
"""Currencies Stripe counts in thousandths."""


def decimals(currency: str) -> int:
    """How many decimals Stripe's minor unit of ``currency`` has (0, 2 or 3); any case."""
    code = currency.upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor_units(nanos: int, currency: str) -> int:
    """``nanos`` of ``currency`` in Stripe's minor units, rounded half to even.

    >>> minor_units(12_345_000_000, "usd"), minor_units(1_500_000_000, "JPY")
    (1234, 2)
    """
    divisor: int = 10 ** (9 - decimals(currency))
    quotient, remainder = divmod(nanos, divisor)  # floor division: 0 <= remainder < divisor
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and quotient % 2 == 1):
        quotient += 1
    return quotient
