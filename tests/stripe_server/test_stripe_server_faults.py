"""Faults on demand, as the real SDK experiences them."""

from __future__ import annotations

import contextlib
import time

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME, meter_event

from rating_service.testing.stripe_server import FaultKind, ManualClock, StripeTestServer

METER_EVENTS = "/v1/billing/meter_events"
pytestmark = pytest.mark.usefixtures("customer", "meter")


async def test_a_retryable_429_is_retried_by_the_sdk(stripe_server: StripeTestServer) -> None:
    """``rate_limited`` sends ``Stripe-Should-Retry: true``: with retries the SDK succeeds."""
    client = stripe_server.stripe_client(max_network_retries=1)
    stripe_server.faults.inject("rate_limited", path=METER_EVENTS)

    await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert [r.status for r in stripe_server.requests[-2:]] == [429, 200]
    assert stripe_server.faults.injected == {FaultKind.RATE_LIMITED: 1}


async def test_a_429_marked_no_retry_reaches_the_caller(stripe_server: StripeTestServer) -> None:
    """``rate_limited_no_retry`` sends ``Stripe-Should-Retry: false``: no retry, ``RateLimitError``."""
    client = stripe_server.stripe_client(max_network_retries=3)
    stripe_server.faults.inject("rate_limited_no_retry")

    with pytest.raises(stripe.RateLimitError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert raised.value.http_status == 429
    assert raised.value.json_body is not None
    assert raised.value.json_body["error"]["code"] == "rate_limit"
    assert stripe_server.requests[-1].status == 429
    assert len(stripe_server.state.events) == 0


async def test_a_server_error_before_applying_changes_nothing(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """The default 500 strikes before the operation: no event, no saved key."""
    stripe_server.faults.inject(FaultKind.SERVER_ERROR)

    with pytest.raises(stripe.APIError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert raised.value.http_status == 500
    assert stripe_server.requests[-1].applied is False
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 0


async def test_a_server_error_after_applying_keeps_the_change(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``after_apply=True``: the event is recorded although the client got a 500."""
    stripe_server.faults.inject(FaultKind.SERVER_ERROR, after_apply=True)

    with pytest.raises(stripe.APIError):
        await client.v1.billing.meter_events.create_async(meter_event("4"))

    assert stripe_server.requests[-1].applied is True
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 4


async def test_an_sdk_retry_after_a_lost_answer_replays_the_real_one(
    stripe_server: StripeTestServer,
) -> None:
    """The SDK retries the 500 with the same key and gets the saved 200: counted once."""
    client = stripe_server.stripe_client(max_network_retries=1)
    stripe_server.faults.inject(FaultKind.SERVER_ERROR, after_apply=True)

    event = await client.v1.billing.meter_events.create_async(
        meter_event("4", identifier="range-1")
    )

    assert event.identifier == "range-1"
    assert [(r.status, r.replayed) for r in stripe_server.requests[-2:]] == [
        (500, False),
        (200, True),
    ]
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 4


async def test_a_resend_with_a_new_key_after_a_lost_answer_is_a_duplicate(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """Without the old key, the identifier is what stops the double count."""
    stripe_server.faults.inject(FaultKind.CONNECTION_RESET, after_apply=True)
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.billing.meter_events.create_async(meter_event("4", identifier="range-1"))

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("4", identifier="range-1"))

    assert raised.value.code == "duplicate_meter_event"
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 4


async def test_a_slow_answer_arrives_after_the_delay(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``slow`` answers normally, ``delay`` seconds later."""
    stripe_server.faults.inject("slow", delay=0.2)
    started = time.monotonic()

    await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert time.monotonic() - started >= 0.2
    assert stripe_server.requests[-1].status == 200


async def test_a_timeout_leaves_the_client_without_an_answer(
    stripe_server: StripeTestServer,
) -> None:
    """``timeout`` never answers: the SDK gives up after its own timeout (``APIConnectionError``)."""
    client = stripe_server.stripe_client(timeout=0.3)
    stripe_server.faults.inject("timeout")

    with pytest.raises(stripe.APIConnectionError):
        await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert len(stripe_server.state.events) == 0


async def test_a_timeout_after_applying_keeps_the_change(stripe_server: StripeTestServer) -> None:
    """``timeout`` with ``after_apply=True``: the client timed out, the event counts."""
    client = stripe_server.stripe_client(timeout=0.3)
    stripe_server.faults.inject("timeout", after_apply=True)

    with pytest.raises(stripe.APIConnectionError):
        await client.v1.billing.meter_events.create_async(meter_event("6"))

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 6


async def test_a_connection_reset_is_a_connection_error_and_changes_nothing(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``connection_reset`` drops the connection without a response; the SDK marks it retryable."""
    stripe_server.faults.inject("connection_reset")

    with pytest.raises(stripe.APIConnectionError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert raised.value.should_retry is True
    assert stripe_server.requests[-1].status is None
    assert len(stripe_server.state.events) == 0


async def test_a_fault_strikes_only_the_path_it_names(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """A fault for ``/v1/billing/credit_grants`` leaves meter events alone."""
    stripe_server.faults.inject("server_error", path="/v1/billing/credit_grants")

    await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert stripe_server.faults.injected == {}


async def test_a_fault_can_name_a_path_by_the_specs_template(
    stripe_server: StripeTestServer, client: stripe.StripeClient, meter: stripe.billing.Meter
) -> None:
    """``/v1/billing/meters/{id}`` matches every meter's path."""
    stripe_server.faults.inject("server_error", path="/v1/billing/meters/{id}", method="GET")

    with pytest.raises(stripe.APIError):
        await client.v1.billing.meters.retrieve_async(meter.id)


async def test_a_fault_strikes_count_times_then_stops(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``count=2``: two 500s, then normal answers."""
    stripe_server.faults.inject("server_error", count=2)
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            await client.v1.billing.meter_events.create_async(meter_event("1"))

    await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert [r.status for r in stripe_server.requests[-3:]] == [500, 500, 200]


async def test_random_faults_follow_the_seed(stripe_clock: ManualClock) -> None:
    """The same seed and the same requests give the same faults, on any server."""
    statuses = []
    for _ in range(2):
        async with StripeTestServer(clock=stripe_clock) as server:
            server.add_customer(CUSTOMER)
            server.faults.set_random(0.5, ["server_error", "rate_limited_no_retry"], seed=7)
            client = server.stripe_client()
            for _ in range(12):
                with contextlib.suppress(stripe.StripeError):
                    await client.v1.customers.retrieve_async(CUSTOMER)
            statuses.append([r.status for r in server.requests])

    assert statuses[0] == statuses[1]
    assert {200, 500, 429} <= set(statuses[0])


def test_a_fault_that_cannot_strike_after_applying_is_refused(stripe_clock: ManualClock) -> None:
    """``after_apply`` makes sense for 500s, timeouts, resets and delays only."""
    server = StripeTestServer(clock=stripe_clock)

    with pytest.raises(ValueError, match="after the operation"):
        server.faults.inject("rate_limited", after_apply=True)


async def test_cleared_faults_no_longer_strike(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``faults.clear()`` drops scripted and random faults."""
    stripe_server.faults.inject("server_error")
    stripe_server.faults.set_random(1.0, ["server_error"], seed=1)
    stripe_server.faults.clear()

    await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert stripe_server.requests[-1].status == 200
