"""Fixtures for the Stripe test server's own tests: a server, a real SDK client, a meter."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME

from rating_service.testing.stripe_server import StripeTestServer, pytest_plugin

# The fixtures users get from the plugin, exercised here as users would get them.
stripe_clock = pytest_plugin.stripe_clock
stripe_server = pytest_plugin.stripe_server


@pytest.fixture
def client(stripe_server: StripeTestServer) -> stripe.StripeClient:
    """The real stripe SDK, no automatic retries."""
    return stripe_server.stripe_client()


@pytest.fixture
def customer(stripe_server: StripeTestServer) -> str:
    stripe_server.add_customer(CUSTOMER)
    return CUSTOMER


@pytest.fixture
async def meter(client: stripe.StripeClient) -> stripe.billing.Meter:
    """A ``sum`` meter for the ``resolution`` event name."""
    return await client.v1.billing.meters.create_async(
        {
            "display_name": "Resolutions",
            "event_name": EVENT_NAME,
            "default_aggregation": {"formula": "sum"},
        }
    )
