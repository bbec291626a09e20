"""Exact money: a Decimal amount with its currency, stored as integer nanos.

Nanos (1e-9 of the currency's unit) are the precision of ``google.type.Money``,
so every amount a caller can send is representable, and integer nanos make
ledger sums exact in any database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

NANOS_PER_UNIT = 1_000_000_000
_NANO = Decimal(1).scaleb(-9)


@dataclass(frozen=True, order=True)
class Money:
    """An amount in one currency; arithmetic across currencies is refused."""

    currency: str
    nanos: int

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        value = Decimal(amount)
        scaled = value.scaleb(9)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} has more than 9 decimal places")
        return cls(currency, int(scaled))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(currency, 0)

    @property
    def amount(self) -> Decimal:
        """The exact amount, without trailing zeros or an exponent (``100``, ``0.99``)."""
        value = (Decimal(self.nanos) * _NANO).normalize()
        exponent = value.as_tuple().exponent
        return value.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else value

    def __mul__(self, count: int) -> Money:
        return Money(self.currency, self.nanos * count)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency, self.nanos + other.nanos)

    def __neg__(self) -> Money:
        return Money(self.currency, -self.nanos)

    def units_affordable(self, unit_price: Money) -> int:
        """How many whole units of ``unit_price`` this amount pays for (rounded down)."""
        self._same_currency(unit_price)
        if unit_price.nanos <= 0:
            raise ValueError("unit price must be positive")
        return self.nanos // unit_price.nanos

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")

    def __str__(self) -> str:
        return f"{self.currency} {self.amount:f}"


def format_nanos(nanos: int) -> str:
    """An exact decimal string (``-1.75``) for an amount in nanos."""
    return f"{Money('', nanos).amount:f}"
