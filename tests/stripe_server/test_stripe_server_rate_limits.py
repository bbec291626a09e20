"""One meter event call at a time per customer and meter; the optional request-rate bucket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME, meter_event

from rating_service.testing.stripe_server import ManualClock, StripeTestServer


@pytest.fixture
async def slow_server(stripe_clock: ManualClock) -> AsyncIterator[StripeTestServer]:
    """A server holding each meter event call 0.2 s, with a meter and customers a and b."""
    async with StripeTestServer(clock=stripe_clock, meter_event_latency=0.2) as server:
        server.add_customer(CUSTOMER)
        server.add_customer("cus_b")
        await server.stripe_client().v1.billing.meters.create_async(
            {
                "display_name": "R",
                "event_name": EVENT_NAME,
                "default_aggregation": {"formula": "sum"},
            }
        )
        yield server


async def test_a_second_concurrent_call_for_the_same_customer_and_meter_is_a_429(
    slow_server: StripeTestServer,
) -> None:
    """Two overlapping calls: one is recorded, the other gets 429 ``rate_limit``."""
    client = slow_server.stripe_client(max_network_retries=2)

    async with asyncio.timeout(5):
        results = await asyncio.gather(
            client.v1.billing.meter_events.create_async(meter_event("1", identifier="a")),
            client.v1.billing.meter_events.create_async(meter_event("1", identifier="b")),
            return_exceptions=True,
        )

    refused = [r for r in results if isinstance(r, stripe.RateLimitError)]
    assert len(refused) == 1
    assert "Stripe-Should-Retry" not in (refused[0].headers or {})
    assert slow_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 1
    assert len(slow_server.requests) == 3, (
        "the SDK does not retry a 429 without Stripe-Should-Retry"
    )


async def test_a_second_concurrent_v2_call_for_the_same_customer_and_meter_is_a_409(
    slow_server: StripeTestServer,
) -> None:
    """v2 answers 409 ``too_many_concurrent_requests`` (Stripe's spec), not v1's 429."""
    client = slow_server.stripe_client()

    async with asyncio.timeout(5):
        results = await asyncio.gather(
            client.v2.billing.meter_events.create_async(meter_event("1", identifier="a")),
            client.v2.billing.meter_events.create_async(meter_event("1", identifier="b")),
            return_exceptions=True,
        )

    refused = [r for r in results if isinstance(r, stripe.StripeError)]
    assert [(r.http_status, (r.json_body or {})["error"]["code"]) for r in refused] == [
        (409, "too_many_concurrent_requests")
    ]
    assert slow_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 1


async def test_concurrent_calls_for_different_customers_both_succeed(
    slow_server: StripeTestServer,
) -> None:
    """The rule is per customer: two customers' calls may overlap."""
    client = slow_server.stripe_client()

    async with asyncio.timeout(5):
        await asyncio.gather(
            client.v1.billing.meter_events.create_async(meter_event("1", customer=CUSTOMER)),
            client.v1.billing.meter_events.create_async(meter_event("1", customer="cus_b")),
        )

    assert [r.status for r in slow_server.requests[-2:]] == [200, 200]


@pytest.mark.usefixtures("customer")
async def test_calls_one_after_the_other_are_not_limited(
    stripe_server: StripeTestServer, client: stripe.StripeClient, meter: stripe.billing.Meter
) -> None:
    """Sequential calls for the same customer and meter all succeed."""
    for identifier in ("a", "b", "c"):
        await client.v1.billing.meter_events.create_async(meter_event("1", identifier=identifier))

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 3


async def test_the_request_rate_bucket_refuses_past_its_burst_until_time_passes(
    stripe_clock: ManualClock,
) -> None:
    """``rate_limit=2`` with a burst of 2: the third call in the same instant is a 429."""
    async with StripeTestServer(clock=stripe_clock, rate_limit=2, rate_limit_burst=2) as server:
        server.add_customer(CUSTOMER)
        client = server.stripe_client(max_network_retries=2)
        for _ in range(2):
            await client.v1.customers.retrieve_async(CUSTOMER)
        with pytest.raises(stripe.RateLimitError):
            await client.v1.customers.retrieve_async(CUSTOMER)
        stripe_clock.advance(0.5)

        await client.v1.customers.retrieve_async(CUSTOMER)

        assert [r.status for r in server.requests] == [200, 200, 429, 200]
