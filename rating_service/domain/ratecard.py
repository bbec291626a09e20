"""Rate cards: versioned price lists, appended and never edited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from rating_service.domain.errors import NoPrice
from rating_service.domain.money import Money

DEFAULT_SETTLEMENT_WINDOW = timedelta(hours=24)
MAX_SETTLEMENT_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Price:
    """The price of one outcome type, and how long its pending outcomes wait."""

    outcome_type: str
    unit_price: Money
    settlement_window: timedelta = DEFAULT_SETTLEMENT_WINDOW


@dataclass(frozen=True)
class RateCardVersion:
    """A rate card as in force from ``effective_from`` (inclusive) to the next version."""

    rate_card_id: str
    effective_from: datetime
    currency: str
    prices: Mapping[str, Price]

    def price_for(self, outcome_type: str) -> Price:
        price = self.prices.get(outcome_type)
        if price is None:
            raise NoPrice(
                f"rate card {self.rate_card_id!r} version {self.effective_from.isoformat()} "
                f"has no price for outcome type {outcome_type!r}",
                rate_card_id=self.rate_card_id,
                outcome_type=outcome_type,
            )
        return price

    def same_prices(self, other: RateCardVersion) -> bool:
        """True when ``other`` prices everything exactly as this one does."""
        return self.currency == other.currency and dict(self.prices) == dict(other.prices)


def require_version(
    version: RateCardVersion | None, rate_card_id: str, at: datetime
) -> RateCardVersion:
    """The version in force, or NO_PRICE saying which card and time had none."""
    if version is None:
        raise NoPrice(
            f"rate card {rate_card_id!r} has no version in force at {at.isoformat()}",
            rate_card_id=rate_card_id,
            at=at.isoformat(),
        )
    return version
