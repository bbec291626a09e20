"""What the reporter needs to know beyond the ledger: Stripe's address, meters, prices, pacing.

``config.py`` builds it from the environment; the reporter takes nothing else,
so it never imports the service's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from rating_service.domain.usage import (
    DEFAULT_MONTH_CLOSE_GRACE,
    DEFAULT_WINDOW,
    meter_event_name,
)


class ReporterSettingsError(ValueError):
    """A reporter setting Stripe would refuse; found at start, not at the first call."""


MAX_EVENT_NAME = 100
"""A billing meter's ``event_name`` is at most 100 characters (Stripe's API reference)."""
MAX_SCOPE_PRICES = 20
MAX_MONTH_CLOSE_GRACE = timedelta(hours=72)
"""Stripe's invoice finalization grace period is at most 72 hours."""
"""A credit grant's ``applicability_config.scope.prices`` holds at most 20 prices."""


@dataclass(frozen=True)
class ReporterSettings:
    api_key: str | None = None
    """STRIPE_API_KEY: the Stripe reporter runs when it is set."""
    api_base: str | None = None
    """STRIPE_API_BASE: Stripe's API address; a local Stripe-compatible server in tests."""
    meter_events_base: str | None = None
    """STRIPE_METER_EVENTS_BASE: the v2 meter event stream's address (default: STRIPE_API_BASE)."""
    meters: Mapping[str, str] = field(default_factory=dict)
    """Outcome type -> meter ``event_name`` (RATING_STRIPE_METERS); default: the outcome type."""
    prices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Outcome type -> Stripe price ids a bucket's credit grant applies to (RATING_STRIPE_PRICES)."""
    window: timedelta = DEFAULT_WINDOW
    """Usage is aggregated per customer, meter and window (RATING_STRIPE_WINDOW, seconds)."""
    month_close_grace: timedelta = DEFAULT_MONTH_CLOSE_GRACE
    """A month closes this long after its end (RATING_STRIPE_MONTH_CLOSE_GRACE, seconds): set
    it to the Stripe account's invoice finalization grace period (Stripe's default: 1 hour,
    at most 72). What the month still owes back then becomes a credit grant."""
    requests_per_second: float = 20.0
    """Calls to Stripe per second at most (RATING_STRIPE_RATE; a sandbox allows about 25)."""
    idle_interval: float = 1.0
    """Seconds between passes when there is nothing to report."""
    max_backoff: float = 60.0
    """Longest wait between retries while Stripe fails (exponential, with jitter)."""
    reconcile_interval: float = 3600.0
    """Seconds between reconciliations inside ``serve`` (RATING_RECONCILE_INTERVAL; 0: off)."""

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.month_close_grace <= MAX_MONTH_CLOSE_GRACE:
            raise ReporterSettingsError(
                "RATING_STRIPE_MONTH_CLOSE_GRACE must be 0 to 72 hours (Stripe's invoice "
                f"finalization grace period), got {self.month_close_grace}"
            )
        for outcome_type, event_name in self.meters.items():
            if not 1 <= len(event_name) <= MAX_EVENT_NAME:
                raise ReporterSettingsError(
                    f"RATING_STRIPE_METERS: the meter event name for {outcome_type!r} must be "
                    f"1 to {MAX_EVENT_NAME} characters (Stripe's limit), got {len(event_name)}"
                )
        for outcome_type, prices in self.prices.items():
            if not 1 <= len(prices) <= MAX_SCOPE_PRICES or not all(prices):
                raise ReporterSettingsError(
                    f"RATING_STRIPE_PRICES: {outcome_type!r} must name 1 to {MAX_SCOPE_PRICES} "
                    f"price ids (a credit grant's scope holds at most {MAX_SCOPE_PRICES}), "
                    f"got {len(prices)}"
                )

    def event_name(self, outcome_type: str) -> str:
        return meter_event_name(outcome_type, self.meters)
