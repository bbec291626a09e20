"""Cancelling meter events (``POST /v2/billing/meter_event_adjustments``, ``type: cancel``).

Stripe's rules (the spec's ``cancel.identifier``: "You can only cancel events
within 24 hours of Stripe receiving them"): the 24 hours run on the server's
clock from the event's arrival, not from its timestamp; a cancelled event no
longer counts; an event is cancelled once.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME

from rating_service.testing.stripe_server import ManualClock, StripeTestServer

pytestmark = pytest.mark.usefixtures("customer", "meter")

DAY = 86_400


def event(value: str, identifier: str) -> dict[str, Any]:
    return {
        "event_name": EVENT_NAME,
        "payload": {"stripe_customer_id": CUSTOMER, "value": value},
        "identifier": identifier,
    }


async def cancel(client: stripe.StripeClient, identifier: str) -> Any:
    return await client.v2.billing.meter_event_adjustments.create_async(
        {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": identifier}}
    )


async def test_an_event_received_23_hours_59_minutes_ago_can_be_cancelled(
    stripe_server: StripeTestServer, client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """The window is judged by the server clock from the event's arrival."""
    await client.v2.billing.meter_events.create_async(event("5", "e-1"))
    stripe_clock.advance(DAY - 60)

    adjustment = await cancel(client, "e-1")

    assert (adjustment.type, adjustment.cancel.identifier) == ("cancel", "e-1")
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 0


async def test_an_event_received_24_hours_ago_cannot_be_cancelled(
    stripe_server: StripeTestServer, client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """At 24 hours the cancel is refused (``invalid_cancel_configuration``) and the event counts."""
    await client.v2.billing.meter_events.create_async(event("5", "e-1"))
    stripe_clock.advance(DAY)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await cancel(client, "e-1")

    assert raised.value.code == "invalid_cancel_configuration"
    assert "within 24 hours" in str(raised.value.user_message)
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5


async def test_the_window_starts_when_the_server_receives_the_event_not_at_its_timestamp(
    stripe_server: StripeTestServer, client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """An event stamped two days back, received now, can be cancelled for another 24 hours."""
    await client.v1.billing.meter_events.create_async(
        {**event("3", "old-1"), "timestamp": int(stripe_clock()) - 2 * DAY}
    )
    stripe_clock.advance(DAY - 1)

    await cancel(client, "old-1")

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 0


async def test_an_event_is_cancelled_once_and_a_second_cancel_says_so(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """The second cancel is refused with "already been canceled"; the first one stands."""
    await client.v2.billing.meter_events.create_async(event("5", "e-1"))
    await client.v2.billing.meter_events.create_async(event("2", "e-2"))
    await cancel(client, "e-1")

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await cancel(client, "e-1")

    assert raised.value.code == "invalid_cancel_configuration"
    assert "already been canceled" in str(raised.value.user_message)
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 2


async def test_an_unknown_identifier_or_another_meters_event_cannot_be_cancelled(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``resource_missing`` for an identifier the meter never received."""
    await client.v2.billing.meter_events.create_async(event("5", "e-1"))

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await cancel(client, "e-404")
    with pytest.raises(stripe.InvalidRequestError) as other_meter:
        await client.v2.billing.meter_event_adjustments.create_async(
            {"event_name": "other", "type": "cancel", "cancel": {"identifier": "e-1"}}
        )

    assert (unknown.value.code, other_meter.value.code) == ("resource_missing", "resource_missing")
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5


async def test_a_cancelled_streamed_event_leaves_the_summaries(
    client: stripe.StripeClient, stripe_clock: ManualClock, meter: stripe.billing.Meter
) -> None:
    """Summaries, what reconciliation reads, no longer count a cancelled stream event."""
    session = await client.v2.billing.meter_event_session.create_async()
    start = int(stripe_clock()) // 60 * 60
    await client.v2.billing.meter_event_stream.create_async(
        {"events": [event("4", "s-1"), event("6", "s-2")]},
        {"api_key": session.authentication_token},
    )
    await cancel(client, "s-2")

    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter.id, {"customer": CUSTOMER, "start_time": start, "end_time": start + 120}
    )

    assert [s.aggregated_value for s in summaries.data] == [4]


async def test_a_cancel_request_without_an_identifier_is_refused_by_the_spec(
    client: stripe.StripeClient,
) -> None:
    """``cancel.identifier`` is required by the spec's request schema."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v2.billing.meter_event_adjustments.create_async(
            {"event_name": EVENT_NAME, "type": "cancel", "cancel": {}}  # type: ignore[typeddict-item]
        )

    assert raised.value.http_status == 400
