"""The v2 meter event stream (sessions, asynchronous validation) and the v2 sync endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME

from rating_service.testing.stripe_server import ManualClock, StreamRejection, StripeTestServer

pytestmark = pytest.mark.usefixtures("customer", "meter")


def event(value: str, identifier: str, customer: str = CUSTOMER) -> dict[str, Any]:
    return {
        "event_name": EVENT_NAME,
        "payload": {"stripe_customer_id": customer, "value": value},
        "identifier": identifier,
    }


async def open_session(client: stripe.StripeClient) -> str:
    session = await client.v2.billing.meter_event_session.create_async()
    return session.authentication_token


async def test_a_session_token_expires_15_minutes_after_creation(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """``expires_at`` is 15 minutes of the server clock after ``created`` (ISO 8601)."""
    session = await client.v2.billing.meter_event_session.create_async()

    created = datetime.fromisoformat(session.created)
    expires_at = datetime.fromisoformat(session.expires_at)
    assert created == datetime.fromtimestamp(stripe_clock(), UTC)
    assert (expires_at - created).total_seconds() == 15 * 60
    assert session.authentication_token


async def test_streamed_events_count_like_v1_events(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """The SDK passes the session token as the request's ``api_key``; events are recorded."""
    token = await open_session(client)

    await client.v2.billing.meter_event_stream.create_async(
        {"events": [event("3", "s-1"), event("4", "s-2")]}, {"api_key": token}
    )

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 7
    assert [e.source for e in stripe_server.state.events] == ["stream", "stream"]
    assert stripe_server.requests[-1].response == {}


async def test_a_streamed_timestamp_is_read_from_iso_8601(
    stripe_server: StripeTestServer, client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """v2 timestamps are date-time strings."""
    token = await open_session(client)
    when = datetime.fromtimestamp(stripe_clock() - 120, UTC).isoformat().replace("+00:00", "Z")

    await client.v2.billing.meter_event_stream.create_async(
        {"events": [{**event("1", "s-1"), "timestamp": when}]}, {"api_key": token}
    )

    assert stripe_server.state.events[0].timestamp == int(stripe_clock()) - 120


async def test_duplicate_streamed_events_are_dropped_silently_and_counted(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """A repeated identifier is accepted (200) but not recorded, as async validation would."""
    token = await open_session(client)
    await client.v2.billing.meter_event_stream.create_async(
        {"events": [event("3", "s-1")]}, {"api_key": token}
    )

    await client.v2.billing.meter_event_stream.create_async(
        {"events": [event("3", "s-1"), event("2", "s-2")]}, {"api_key": token}
    )

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5
    assert stripe_server.state.stream_duplicates == 1


async def test_invalid_streamed_events_are_dropped_and_reported_as_stripe_would(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """Unknown customers and bad values are dropped with the async error reports' codes."""
    token = await open_session(client)

    await client.v2.billing.meter_event_stream.create_async(
        {
            "events": [
                event("1", "s-1", customer="cus_nobody"),
                event("1.5", "s-2"),
                event("2", "s-3"),
            ]
        },
        {"api_key": token},
    )

    assert [(r.identifier, r.code) for r in stripe_server.state.stream_rejections] == [
        ("s-1", "meter_event_customer_not_found"),
        ("s-2", "meter_event_invalid_value"),
    ]
    assert isinstance(stripe_server.state.stream_rejections[0], StreamRejection)
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 2


async def test_an_expired_session_token_is_a_401_session_expired(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """After 15 minutes: 401 ``billing_meter_event_session_expired`` (``TemporarySessionExpiredError``)."""
    token = await open_session(client)
    stripe_clock.advance(15 * 60)

    with pytest.raises(stripe.TemporarySessionExpiredError) as raised:
        await client.v2.billing.meter_event_stream.create_async(
            {"events": [event("1", "s-1")]}, {"api_key": token}
        )

    assert (raised.value.http_status, raised.value.code) == (
        401,
        "billing_meter_event_session_expired",
    )


@pytest.mark.parametrize("token", ["mes_tok_unknown", "sk_test_stripe_test_server"])
async def test_a_token_that_is_not_a_live_session_is_refused(
    client: stripe.StripeClient, token: str
) -> None:
    """An unknown token, or an API key, is not a session token: 401 session expired."""
    with pytest.raises(stripe.TemporarySessionExpiredError):
        await client.v2.billing.meter_event_stream.create_async(
            {"events": [event("1", "s-1")]}, {"api_key": token}
        )


@pytest.mark.parametrize("count", [0, 101])
async def test_a_stream_request_carries_1_to_100_events(
    client: stripe.StripeClient, count: int
) -> None:
    """Fewer than 1 or more than 100 events: 400 naming ``events``."""
    token = await open_session(client)
    events = [event("1", f"s-{i}") for i in range(count)]

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v2.billing.meter_event_stream.create_async(
            {"events": events}, {"api_key": token}
        )

    assert raised.value.json_body is not None
    assert raised.value.json_body["error"]["param"] == "events"


async def test_a_malformed_stream_timestamp_is_refused_at_once(client: stripe.StripeClient) -> None:
    """A timestamp that is not a date-time is a synchronous 400 naming it."""
    token = await open_session(client)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v2.billing.meter_event_stream.create_async(
            {"events": [{**event("1", "s-1"), "timestamp": "yesterday"}]}, {"api_key": token}
        )

    assert raised.value.json_body is not None
    assert raised.value.json_body["error"]["param"] == "events[0][timestamp]"


async def test_the_v2_synchronous_endpoint_validates_at_once(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``/v2/billing/meter_events`` records like v1 and refuses a duplicate in the v2 error shape."""
    created = await client.v2.billing.meter_events.create_async(event("5", "v2-1"))

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v2.billing.meter_events.create_async(event("5", "v2-1"))

    assert (created.identifier, created.object) == ("v2-1", "v2.billing.meter_event")
    assert raised.value.code == "duplicate_meter_event"
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5


async def test_a_v2_adjustment_cancels_an_event(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``/v2/billing/meter_event_adjustments`` with ``type=cancel`` stops the event counting."""
    await client.v2.billing.meter_events.create_async(event("5", "v2-1"))

    adjustment = await client.v2.billing.meter_event_adjustments.create_async(
        {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": "v2-1"}}
    )

    assert adjustment.status == "pending"
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 0


async def test_the_session_expired_fault_strikes_the_stream(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``session_expired`` makes a live token look expired once."""
    token = await open_session(client)
    stripe_server.faults.inject("session_expired")

    with pytest.raises(stripe.TemporarySessionExpiredError):
        await client.v2.billing.meter_event_stream.create_async(
            {"events": [event("1", "s-1")]}, {"api_key": token}
        )
    await client.v2.billing.meter_event_stream.create_async(
        {"events": [event("1", "s-1")]}, {"api_key": token}
    )

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 1
