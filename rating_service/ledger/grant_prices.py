"""What a bucket's credit grant pays per unit (the reporter, reconciliation, ExplainOutcome)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from rating_service.ledger.executor import RowLike
from rating_service.ledger.repositories.rate_cards import version_from_row
from rating_service.ledger.schema import customers, rate_card_versions


class GrantPrices:
    """What a bucket's grant pays per unit: the price Stripe meters a covered outcome at.

    Every outcome reaches Stripe as usage at the meter's price, which is the rate card's; the
    grant must pay exactly that for each outcome the bucket covers, or Stripe bills the
    difference for outcomes the ledger charged nothing for. So a unit is worth the card's
    price for the bucket's outcome type in force when the bucket starts (a fixed instant, so
    creation and reconciliation agree), not the bucket's own ``unit_price`` (what the
    customer paid for the prepaid unit, which may be lower). A card that prices the type in
    another currency, or not at all, leaves the bucket's own price.

    Memoised per (rate card, outcome type, instant): one instance per read or job.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._rate_cards: dict[str, str] = {}
        self._prices: dict[tuple[str, str, int], tuple[int, str] | None] = {}

    def of(self, bucket: RowLike) -> int:
        """The grant's price per unit, in nanos, for a ``buckets`` row read by column name
        (its customer_id, outcome_type, valid_from, currency and unit_price_nanos): a
        SQLAlchemy row's ``_mapping``, or the executor's row."""
        rate_card_id = self._rate_card(bucket["customer_id"])
        key = (rate_card_id, bucket["outcome_type"], int(bucket["valid_from"]))
        if key not in self._prices:
            self._prices[key] = self._card_price(*key)
        found = self._prices[key]
        if found is None or found[1] != bucket["currency"]:
            return int(bucket["unit_price_nanos"])
        return found[0]

    def _rate_card(self, customer_id: str) -> str:
        if customer_id not in self._rate_cards:
            self._rate_cards[customer_id] = self._conn.execute(
                select(customers.c.rate_card_id).where(customers.c.customer_id == customer_id)
            ).scalar_one()
        return self._rate_cards[customer_id]

    def _card_price(self, rate_card_id: str, outcome_type: str, at: int) -> tuple[int, str] | None:
        versions = rate_card_versions.c
        row = self._conn.execute(
            select(rate_card_versions)
            .where(versions.rate_card_id == rate_card_id, versions.effective_from <= at)
            .order_by(versions.effective_from.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        version = version_from_row(row._mapping)
        price = version.prices.get(outcome_type)
        return None if price is None else (price.unit_price.nanos, version.currency)
