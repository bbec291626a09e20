"""Daily usage counts (``usage_days``): read a customer's days, or a month of many customers.

The write path adds to them in the transaction of each entry (``staging``);
reads here never touch the entries, so a month costs its number of counts
(customers x days x types x prices), not its number of outcomes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select

from rating_service.domain.billing import UsageCounts, UsageKey
from rating_service.domain.money import Money
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import RowLike
from rating_service.ledger.schema import customers, usage_days

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

_DAYS = select(usage_days).where(
    usage_days.c.customer_id == bindparam("customer_id"),
    usage_days.c.day >= bindparam("start"),
    usage_days.c.day < bindparam("end"),
)
_MONTH_OF_CUSTOMERS = select(usage_days).where(
    usage_days.c.customer_id.in_(bindparam("ids", expanding=True)),
    usage_days.c.day >= bindparam("start"),
    usage_days.c.day < bindparam("end"),
)
_MONTH_OF_RATE_CARD = (
    select(usage_days)
    .join(customers, customers.c.customer_id == usage_days.c.customer_id)
    .where(
        customers.c.rate_card_id == bindparam("rate_card_id"),
        usage_days.c.day >= bindparam("start"),
        usage_days.c.day < bindparam("end"),
    )
)

Counted = tuple[UsageKey, UsageCounts]


def _counted(row: RowLike) -> Counted:
    return (
        UsageKey(
            from_micros(row["day"]),
            row["outcome_type"],
            Money(row["currency"], row["unit_price_nanos"]),
        ),
        UsageCounts(
            row["settled"], row["reversed"], row["covered_settled"], row["covered_reversed"]
        ),
    )


class Usage:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def days(self, customer_id: str, start: datetime, end: datetime) -> list[Counted]:
        """The customer's counts of the days from ``start`` (inclusive) to ``end`` (exclusive)."""
        rows = self._unit.db().all(
            _DAYS, {"customer_id": customer_id, "start": to_micros(start), "end": to_micros(end)}
        )
        return [_counted(r) for r in rows]

    def of_customers(
        self, customer_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[Counted]]:
        """The counts of those days for each of ``customer_ids`` that has any."""
        rows = self._unit.db().all(
            _MONTH_OF_CUSTOMERS,
            {"ids": list(customer_ids), "start": to_micros(start), "end": to_micros(end)},
        )
        return _by_customer(rows)

    def of_rate_card(
        self, rate_card_id: str, start: datetime, end: datetime
    ) -> dict[str, list[Counted]]:
        """The counts of those days for each customer now on ``rate_card_id`` that has any."""
        rows = self._unit.db().all(
            _MONTH_OF_RATE_CARD,
            {"rate_card_id": rate_card_id, "start": to_micros(start), "end": to_micros(end)},
        )
        return _by_customer(rows)


def _by_customer(rows: Sequence[RowLike]) -> dict[str, list[Counted]]:
    found: dict[str, list[Counted]] = defaultdict(list)
    for r in rows:
        found[r["customer_id"]].append(_counted(r))
    return dict(found)
