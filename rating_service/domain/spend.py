"""Spend controls: a customer's monthly alert thresholds and hard limit, and the rules on them.

Both count money of one calendar month (UTC) in the currency of the
customer's rate card. The hard limit bounds what the month may be charged,
settled and pending together, so an outcome can be refused before it settles;
an alert marks the month's charged amount (settled, net of reversals: what
``GetBalance.period_charged`` says) reaching a threshold, once per threshold
and month. Charges in another currency (a rate card that changed currency)
are not comparable and are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rating_service.domain.errors import SpendLimitReached
from rating_service.domain.money import Money, format_nanos


@dataclass(frozen=True)
class SpendControls:
    """What ``PutSpendControls`` set: amounts in nanos of ``currency``."""

    currency: str
    alert_thresholds: tuple[int, ...]
    """Increasing and distinct, each > 0."""
    hard_limit: int | None
    updated_at: datetime

    @property
    def thresholds(self) -> tuple[Money, ...]:
        return tuple(Money(self.currency, t) for t in self.alert_thresholds)

    @property
    def limit(self) -> Money | None:
        return None if self.hard_limit is None else Money(self.currency, self.hard_limit)


@dataclass(frozen=True)
class Exposure:
    """A month's money so far, in the controls' currency: settled charges and pending ones."""

    charged: int
    pending: int

    @property
    def total(self) -> int:
        return self.charged + self.pending


def require_within_limit(controls: SpendControls | None, charge: Money, spent: Exposure) -> None:
    """Refuse a charge that would take the month's charged plus pending amount past the limit.

    Reaching the limit exactly is allowed; a zero charge (a bucket covered it) never refused.
    """
    if controls is None or controls.hard_limit is None or charge.nanos <= 0:
        return
    if charge.currency != controls.currency:
        return
    if spent.total + charge.nanos <= controls.hard_limit:
        return
    limit = Money(controls.currency, controls.hard_limit)
    raise SpendLimitReached(
        f"the charge of {charge} would take this month's charged plus pending amount "
        f"({Money(controls.currency, spent.total)}) past the hard limit of {limit}; "
        "nothing was written",
        hard_limit=format_nanos(controls.hard_limit),
        spent=format_nanos(spent.total),
        charge=format_nanos(charge.nanos),
        currency=controls.currency,
    )


def limit_remaining(controls: SpendControls | None, spent: Exposure) -> Money | None:
    """What may still be charged this month before the limit refuses (never below zero)."""
    if controls is None or controls.hard_limit is None:
        return None
    return Money(controls.currency, max(controls.hard_limit - spent.total, 0))


def crossed_thresholds(
    controls: SpendControls | None, currency: str, before: int, after: int
) -> list[int]:
    """The thresholds a month's charged amount reached going from ``before`` to ``after``.

    A threshold is crossed when ``before < threshold <= after``; whether it was
    already crossed earlier in the month (and fell back under by a reversal) is
    for the caller to look up: an alert fires once per threshold and month.
    """
    if controls is None or currency != controls.currency or after <= before:
        return []
    return [t for t in controls.alert_thresholds if before < t <= after]


@dataclass(frozen=True)
class NewAlert:
    """An alert to raise, before the ledger gives it its id."""

    customer_id: str
    period: str
    """The calendar month, ``YYYY-MM``."""
    threshold: Money
    period_charged: Money
    crossed_at: datetime


@dataclass(frozen=True)
class Alert:
    alert_id: int
    customer_id: str
    period: str
    threshold: Money
    period_charged: Money
    crossed_at: datetime

    @property
    def period_start(self) -> datetime:
        year, month = self.period.split("-")
        return datetime(int(year), int(month), 1, tzinfo=UTC)
