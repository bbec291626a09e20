"""pytest fixtures: a fresh Stripe test server per test, on a clock the test moves.

Enable them in the top-level ``conftest.py`` of a project::

    pytest_plugins = ["rating_service.testing.stripe_server.pytest_plugin"]

or, in a nested ``conftest.py`` (where ``pytest_plugins`` is not allowed)::

    from rating_service.testing.stripe_server import pytest_plugin

    stripe_clock = pytest_plugin.stripe_clock
    stripe_server = pytest_plugin.stripe_server

Then::

    async def test_usage_reaches_stripe(stripe_server, stripe_clock):
        stripe_server.add_customer("cus_a")
        client = stripe_server.stripe_client()
        ...
        stripe_clock.advance(3600)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ._clock import ManualClock
from ._server import StripeTestServer


@pytest.fixture
def stripe_clock() -> ManualClock:
    """The server's clock: stands at 2026-01-01T00:00:00Z until the test advances it."""
    return ManualClock()


@pytest_asyncio.fixture
async def stripe_server(stripe_clock: ManualClock) -> AsyncIterator[StripeTestServer]:
    """A started server (strict about customers, no rate limit), stopped after the test."""
    async with StripeTestServer(clock=stripe_clock) as server:
        yield server
