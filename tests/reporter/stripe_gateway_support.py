"""Values the Stripe gateway's tests build again and again: the customer, the meter, events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rating_service.reporter.gateway import MeterEvent
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import ManualClock

CUSTOMER = "cus_a"
EVENT_NAME = "resolution"
NOW = datetime.fromtimestamp(ManualClock()(), UTC)
"""Where the Stripe test server's clock stands until a test moves it (2026-01-01T00:00:00Z)."""
HOUR_AGO = NOW - timedelta(hours=1)

GatewayFactory = Callable[..., StripeGateway]
"""``make_gateway(**overrides)``: a StripeGateway aimed at the test server, closed after the test."""


def event(
    identifier: str,
    value: int = 1,
    *,
    at: datetime = HOUR_AGO,
    customer: str = CUSTOMER,
    event_name: str = EVENT_NAME,
) -> MeterEvent:
    """One aggregated usage report; by default an hour before the server's now."""
    return MeterEvent(
        identifier=identifier,
        event_name=event_name,
        stripe_customer_id=customer,
        value=value,
        timestamp=at,
    )
