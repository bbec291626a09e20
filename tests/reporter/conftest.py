"""Fixtures for the Stripe gateway's tests: the Stripe test server and gateways aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from stripe_gateway_support import CUSTOMER, EVENT_NAME, GatewayFactory

from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import ManualClock, StripeTestServer, pytest_plugin

stripe_clock = pytest_plugin.stripe_clock
stripe_server = pytest_plugin.stripe_server


@pytest.fixture
def gateway_clock(stripe_clock: ManualClock) -> Callable[[], datetime]:
    """The gateway's clock reads the server's, so session expiry is judged on one time."""
    return lambda: datetime.fromtimestamp(stripe_clock(), UTC)


@pytest.fixture
async def make_gateway(
    stripe_server: StripeTestServer, gateway_clock: Callable[[], datetime]
) -> AsyncIterator[GatewayFactory]:
    """Gateways aimed at the test server (no rate limit to speak of, 5 s timeout unless given)."""
    made: list[StripeGateway] = []

    def make(**overrides: Any) -> StripeGateway:
        options: dict[str, Any] = {
            "api_base": stripe_server.base_url,
            "meter_events_base": stripe_server.base_url,
            "requests_per_second": 10_000.0,
            "timeout": 5.0,
            "clock": gateway_clock,
            **overrides,
        }
        gateway = StripeGateway("sk_test_reporter", **options)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> StripeGateway:
    return make_gateway()


@pytest.fixture
def customer(stripe_server: StripeTestServer) -> str:
    stripe_server.add_customer(CUSTOMER)
    return CUSTOMER


@pytest.fixture
async def meter(gateway: StripeGateway) -> str:
    """The id of a ``sum`` meter for the ``resolution`` event name, made by the gateway."""
    return await gateway.create_meter(EVENT_NAME, "Resolutions")
