"""How far Stripe trails the customers' ledgers, as a few series whatever their number.

One series per customer would grow the metrics with the customer list; quantiles over the
customers the reporter is working on (a Stripe id, not parked) say whether most are current
and how far the worst trails. Parked customers and those without a Stripe id have their own
gauge and ``rating-service status``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Gauge

from rating_service.ledger import outbox

QUANTILES = (0.5, 0.9, 0.99, 1.0)
"""1.0 is the customer furthest behind."""
LAG_ENTRIES = Gauge(
    "rating_stripe_customer_lag_entries",
    "Ledger entries not yet planned for Stripe, quantiles over the customers being reported",
    ["quantile"],
)
LAG_SECONDS = Gauge(
    "rating_stripe_customer_lag_seconds",
    "Age of the oldest ledger entry or meter event not yet in Stripe, quantiles over the "
    "customers being reported",
    ["quantile"],
)


def nearest_rank(values: Sequence[float], quantile: float) -> float:
    """The value at ``quantile`` by the nearest-rank method (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def observe(standings: Sequence[outbox.ReportingStanding], now: datetime) -> None:
    """Set the lag gauges from every customer's standing at ``now``."""
    reported = [s for s in standings if s.stripe_customer_id and s.parked_error is None]
    entries = [float(s.entries_unplanned) for s in reported]
    seconds = [_seconds_behind(s, now) for s in reported]
    for quantile in QUANTILES:
        LAG_ENTRIES.labels(str(quantile)).set(nearest_rank(entries, quantile))
        LAG_SECONDS.labels(str(quantile)).set(nearest_rank(seconds, quantile))


def _seconds_behind(standing: outbox.ReportingStanding, now: datetime) -> float:
    waiting = [t for t in (standing.oldest_unplanned_at, standing.oldest_unsent_at) if t]
    return max((max(0.0, (now - t).total_seconds()) for t in waiting), default=0.0)
