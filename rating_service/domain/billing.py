"""A month's bill from the ledger's daily usage counts, and the same month under draft prices.

The ledger keeps, in the transaction of each settlement and reversal, a count
per customer, UTC day, outcome type and unit price (``usage_of`` says what an
entry adds). A month's invoice and a re-pricing both read those counts, never
the entries: a month of a million outcomes is a few thousand counts.

The numbers obey the ledger's own: for every month, the sum of the lines'
``net`` is the ``usage:<month>:outcomes`` balance and the sum of their
``amount`` the ``usage:<month>:charged`` balance (a reversal counts in the
month in which it is made, at the price the outcome was rated at).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from rating_service.domain.errors import AmountOutOfRange, FieldViolation, InvalidArgument
from rating_service.domain.money import Money
from rating_service.domain.postings import EntryKind, Transaction


def day_of(at: datetime) -> datetime:
    """The first instant of ``at``'s UTC day."""
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def month_start(at: datetime) -> datetime:
    """The first instant of ``at``'s calendar month (UTC)."""
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one ``start`` opens."""
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


@dataclass(frozen=True, order=True)
class UsageKey:
    """What one daily count is about: a UTC day, an outcome type, a unit price."""

    day: datetime
    outcome_type: str
    unit_price: Money


@dataclass(frozen=True)
class UsageCounts:
    """Settlements and reversals of one key; ``covered_*``: those a bucket covered."""

    settled: int = 0
    reversed: int = 0
    covered_settled: int = 0
    covered_reversed: int = 0

    def __add__(self, other: UsageCounts) -> UsageCounts:
        return UsageCounts(
            self.settled + other.settled,
            self.reversed + other.reversed,
            self.covered_settled + other.covered_settled,
            self.covered_reversed + other.covered_reversed,
        )

    def __neg__(self) -> UsageCounts:
        return UsageCounts(
            -self.settled, -self.reversed, -self.covered_settled, -self.covered_reversed
        )

    @property
    def net(self) -> int:
        return self.settled - self.reversed

    @property
    def covered(self) -> int:
        return self.covered_settled - self.covered_reversed

    @property
    def billable(self) -> int:
        return self.net - self.covered


_SETTLED = UsageCounts(settled=1)
_SETTLED_COVERED = UsageCounts(settled=1, covered_settled=1)
_REVERSED = UsageCounts(reversed=1)
_REVERSED_COVERED = UsageCounts(reversed=1, covered_reversed=1)


def usage_of(tx: Transaction) -> tuple[UsageKey, UsageCounts] | None:
    """The daily count a ledger transaction adds: a settlement or a reversal, else none."""
    if tx.kind is EntryKind.OUTCOME_RATED:
        counts = _SETTLED_COVERED if tx.bucket_id else _SETTLED
    elif tx.kind is EntryKind.OUTCOME_REVERSED:
        counts = _REVERSED_COVERED if tx.bucket_id else _REVERSED
    else:
        return None
    assert tx.unit_price is not None, "an outcome transaction carries its unit price"
    return UsageKey(day_of(tx.occurred_at), tx.outcome_type, tx.unit_price), counts


def sum_counts(
    counts: Iterable[tuple[UsageKey, UsageCounts]],
) -> dict[UsageKey, UsageCounts]:
    """Counts with equal keys added up."""
    total: dict[UsageKey, UsageCounts] = defaultdict(UsageCounts)
    for key, c in counts:
        total[key] = total[key] + c
    return dict(total)


@dataclass(frozen=True)
class InvoiceLine:
    outcome_type: str
    unit_price: Money
    counts: UsageCounts

    @property
    def amount(self) -> Money:
        return self.unit_price * self.counts.billable

    @property
    def credit(self) -> Money:
        """The value of the covered outcomes at this line's price."""
        return self.unit_price * self.counts.covered


def invoice_lines(counts: Iterable[tuple[UsageKey, UsageCounts]]) -> list[InvoiceLine]:
    """One line per outcome type and unit price over the days given, ordered by both."""
    merged: dict[tuple[str, Money], UsageCounts] = defaultdict(UsageCounts)
    for key, c in counts:
        line = (key.outcome_type, key.unit_price)
        merged[line] = merged[line] + c
    return [
        InvoiceLine(outcome_type, price, c)
        for (outcome_type, price), c in sorted(
            merged.items(), key=lambda kv: (kv[0][0], kv[0][1].currency, kv[0][1].nanos)
        )
        if c != UsageCounts()
    ]


def total(amounts: Iterable[Money], currency: str) -> Money:
    """The sum of ``amounts``, all in ``currency`` (zero when there are none)."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result


@dataclass(frozen=True)
class Invoice:
    customer_id: str
    period_start: datetime
    period_end: datetime
    currency: str
    lines: tuple[InvoiceLine, ...]
    pending_outcomes: int
    pending_charge: Money
    meters: tuple[MeterUsage, ...]

    @property
    def credits(self) -> Money:
        return total((line.credit for line in self._billed_lines), self.currency)

    @property
    def total(self) -> Money:
        return total((line.amount for line in self._billed_lines), self.currency)

    @property
    def _billed_lines(self) -> list[InvoiceLine]:
        """The lines in the invoice's currency. A customer moved mid-month to a card in another
        currency has lines in both; one total cannot add them (Stripe bills a customer in one
        currency too), so the others stay as lines, each priced in its own currency."""
        return [line for line in self.lines if line.unit_price.currency == self.currency]


@dataclass(frozen=True)
class MeterUsage:
    """What one meter has reported to Stripe for a month so far."""

    event_name: str
    planned: int
    sent: int
    debt: int
    credited: int


# ---- re-pricing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Repriced:
    customer_id: str
    billable_outcomes: int
    actual: Money
    simulated: Money

    @property
    def difference(self) -> Money:
        return self.simulated + -self.actual


MAX_MONEY_NANOS = (2**63 - 1) * 10**9
"""What ``google.type.Money`` carries: a signed 64-bit count of units (and the nanos)."""


def require_representable(*amounts: Money) -> None:
    """AMOUNT_OUT_OF_RANGE for an amount no Money message can carry (a draft far above the
    prices actually billed can take a month there)."""
    for amount in amounts:
        if abs(amount.nanos) > MAX_MONEY_NANOS:
            raise AmountOutOfRange(
                f"{amount.currency} amount out of the range google.type.Money carries",
                currency=amount.currency,
            )


@dataclass(frozen=True)
class Simulation:
    period_start: datetime
    currency: str
    customers: tuple[Repriced, ...]

    @property
    def actual_total(self) -> Money:
        return total((c.actual for c in self.customers), self.currency)

    @property
    def simulated_total(self) -> Money:
        return total((c.simulated for c in self.customers), self.currency)

    @property
    def difference_total(self) -> Money:
        return self.simulated_total + -self.actual_total


def reprice(
    customer_id: str,
    lines: Iterable[InvoiceLine],
    draft: Mapping[str, Money],
    currency: str,
) -> Repriced:
    """One customer's month at its actual prices and under ``draft`` (by outcome type).

    The billable count of each line stays what it is (bucket draws are kept);
    a type the draft does not price keeps its actual price.
    """
    actual = simulated = Money.zero(currency)
    billable = 0
    for line in lines:
        if line.counts.billable == 0:
            continue
        if line.unit_price.currency != currency:
            raise InvalidArgument(
                FieldViolation(
                    "currency_code",
                    f"customer {customer_id!r} is billed in {line.unit_price.currency} that month",
                )
            )
        billable += line.counts.billable
        actual = actual + line.amount
        simulated = simulated + draft.get(line.outcome_type, line.unit_price) * line.counts.billable
    return Repriced(customer_id, billable, actual, simulated)
