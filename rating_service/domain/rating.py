"""Rating and quoting: one set of rules, so a quote equals what recording charges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rating_service.domain.buckets import Bucket, Draw, allocate, drawable
from rating_service.domain.money import Money
from rating_service.domain.ratecard import RateCardVersion


@dataclass(frozen=True)
class Rating:
    """What one outcome takes: a bucket unit, or its charge at the unit price."""

    unit_price: Money
    bucket_id: str | None
    charged: Money
    rate_card_version: datetime
    settlement_window: timedelta


@dataclass(frozen=True)
class Quote:
    unit_price: Money
    units_covered: int
    units_billable: int
    total: Money
    rate_card_version: datetime
    lines: tuple[Draw, ...]
    limit_remaining: Money | None = None
    """What the month may still be charged before the hard limit; None without a limit."""


def quote(
    version: RateCardVersion,
    buckets: Sequence[Bucket],
    outcome_type: str,
    quantity: int,
    at: datetime,
) -> Quote:
    """What ``quantity`` outcomes at ``at`` would take from buckets and cost."""
    price = version.price_for(outcome_type)
    draws = allocate(drawable(buckets, outcome_type, at), quantity)
    covered = sum(d.units for d in draws)
    billable = quantity - covered
    return Quote(
        unit_price=price.unit_price,
        units_covered=covered,
        units_billable=billable,
        total=price.unit_price * billable,
        rate_card_version=version.effective_from,
        lines=tuple(draws),
    )


def rate_outcome(
    version: RateCardVersion, buckets: Sequence[Bucket], outcome_type: str, at: datetime
) -> Rating:
    """Rate one outcome: the quote of a single unit, made concrete."""
    q = quote(version, buckets, outcome_type, 1, at)
    price = version.price_for(outcome_type)
    return Rating(
        unit_price=q.unit_price,
        bucket_id=q.lines[0].bucket_id if q.lines else None,
        charged=q.total,
        rate_card_version=q.rate_card_version,
        settlement_window=price.settlement_window,
    )
