"""Customers, meters, meter events (v1) and their cancellation."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME, meter_event

from rating_service.testing.stripe_server import ManualClock, StripeTestServer

DAY = 86_400


async def test_a_created_customer_can_be_retrieved(client: stripe.StripeClient) -> None:
    """``POST /v1/customers`` makes a ``cus_`` id that ``GET /v1/customers/{id}`` finds."""
    created = await client.v1.customers.create_async({"email": "ops@example.com"})

    found = await client.v1.customers.retrieve_async(created.id)

    assert created.id.startswith("cus_")
    assert (found.id, found.email) == (created.id, "ops@example.com")


async def test_an_unknown_customer_is_a_404_resource_missing(client: stripe.StripeClient) -> None:
    """Retrieving a customer that does not exist: 404 ``resource_missing``."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.customers.retrieve_async("cus_nobody")

    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


async def test_a_test_can_add_a_customer_with_the_id_it_picks(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``server.add_customer("cus_given")`` exists for the API at once."""
    stripe_server.add_customer("cus_given", name="Given")

    found = await client.v1.customers.retrieve_async("cus_given")

    assert found.name == "Given"


@pytest.mark.usefixtures("meter")
async def test_a_second_meter_with_the_same_event_name_is_refused(
    client: stripe.StripeClient,
) -> None:
    """One meter per event name: 400 naming ``event_name``."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meters.create_async(
            {
                "display_name": "Again",
                "event_name": EVENT_NAME,
                "default_aggregation": {"formula": "sum"},
            }
        )

    assert (raised.value.http_status, raised.value.param) == (400, "event_name")


async def test_a_meter_has_stripes_defaults(meter: stripe.billing.Meter) -> None:
    """Customer key ``stripe_customer_id``, value key ``value``, status ``active``."""
    assert meter.id.startswith("mtr_")
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.value_settings.event_payload_key == "value"
    assert meter.status == "active"


async def test_meters_are_listed_newest_first_and_filtered_by_status(
    client: stripe.StripeClient,
) -> None:
    """``GET /v1/billing/meters?status=...`` filters; the list is newest first."""
    for name in ("first", "second", "third"):
        await client.v1.billing.meters.create_async(
            {"display_name": name, "event_name": name, "default_aggregation": {"formula": "sum"}}
        )
    listed = await client.v1.billing.meters.list_async()
    await client.v1.billing.meters.deactivate_async(listed.data[0].id)

    active = await client.v1.billing.meters.list_async({"status": "active"})

    assert [m.event_name for m in listed.data] == ["third", "second", "first"]
    assert [m.event_name for m in active.data] == ["second", "first"]


async def test_a_list_is_paginated_with_starting_after(client: stripe.StripeClient) -> None:
    """``limit`` and ``starting_after`` walk the list; the SDK's auto-pagination works."""
    for name in ("a", "b", "c"):
        await client.v1.billing.meters.create_async(
            {"display_name": name, "event_name": name, "default_aggregation": {"formula": "sum"}}
        )

    first_page = await client.v1.billing.meters.list_async({"limit": 2})
    everything = [m.event_name async for m in first_page.auto_paging_iter()]

    assert (len(first_page.data), first_page.has_more) == (2, True)
    assert everything == ["c", "b", "a"]


async def test_a_meters_display_name_can_be_changed(
    client: stripe.StripeClient, meter: stripe.billing.Meter
) -> None:
    """``POST /v1/billing/meters/{id}`` updates ``display_name``."""
    await client.v1.billing.meters.update_async(meter.id, {"display_name": "Resolved chats"})

    found = await client.v1.billing.meters.retrieve_async(meter.id)

    assert found.display_name == "Resolved chats"


@pytest.mark.usefixtures("customer")
async def test_a_deactivated_meter_refuses_events_until_reactivated(
    client: stripe.StripeClient, meter: stripe.billing.Meter
) -> None:
    """Events for an inactive meter: 400 ``archived_meter``; reactivated, they count again."""
    await client.v1.billing.meters.deactivate_async(meter.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("1"))
    await client.v1.billing.meters.reactivate_async(meter.id)

    accepted = await client.v1.billing.meter_events.create_async(meter_event("1"))

    assert raised.value.code == "archived_meter"
    assert accepted.event_name == EVENT_NAME


@pytest.mark.usefixtures("customer", "meter")
async def test_meter_events_add_up_in_the_meter_total(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """Accepted events count toward ``state.meter_totals(customer, event_name)``."""
    for value in ("3", "4"):
        await client.v1.billing.meter_events.create_async(meter_event(value))

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 7


@pytest.mark.usefixtures("customer")
async def test_an_event_name_without_a_meter_is_refused(client: stripe.StripeClient) -> None:
    """No meter for the event name: 400 ``no_meter`` naming ``event_name``."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event(event_name="unmetered"))

    assert (raised.value.code, raised.value.param) == ("no_meter", "event_name")


@pytest.mark.usefixtures("customer", "meter")
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "ten", ""])
async def test_a_value_that_is_not_a_whole_positive_number_is_refused(
    client: stripe.StripeClient, value: str
) -> None:
    """Values are whole positive numbers written as strings."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event(value))

    assert (raised.value.code, raised.value.param) == ("payload_invalid_value", "payload[value]")


@pytest.mark.usefixtures("meter")
async def test_an_event_without_the_customer_key_is_refused(client: stripe.StripeClient) -> None:
    """The payload must name the customer under the meter's customer key."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(
            {"event_name": EVENT_NAME, "payload": {"value": "1"}}
        )

    assert raised.value.code == "payload_no_customer_defined"
    assert raised.value.param == "payload[stripe_customer_id]"


@pytest.mark.usefixtures("customer")
async def test_a_meter_with_its_own_customer_key_reads_the_customer_there(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``customer_mapping[event_payload_key]=account`` puts the customer under ``account``."""
    await client.v1.billing.meters.create_async(
        {
            "display_name": "Tokens",
            "event_name": "tokens",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "account", "type": "by_id"},
        }
    )

    await client.v1.billing.meter_events.create_async(
        {"event_name": "tokens", "payload": {"account": CUSTOMER, "value": "9"}}
    )

    assert stripe_server.state.meter_totals(CUSTOMER, "tokens") == 9


@pytest.mark.usefixtures("customer", "meter")
async def test_a_repeated_identifier_within_24_hours_is_refused(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """400 ``duplicate_meter_event``, Stripe's message, ``Stripe-Should-Retry: false``."""
    await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))

    error = raised.value
    assert (error.http_status, error.code, error.param) == (
        400,
        "duplicate_meter_event",
        "identifier",
    )
    assert error.user_message == "An event already exists with identifier range-1."
    assert (error.headers or {}).get("Stripe-Should-Retry") == "false"
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5


@pytest.mark.usefixtures("customer", "meter")
async def test_an_identifier_can_be_used_again_after_24_hours(
    stripe_server: StripeTestServer, stripe_clock: ManualClock, client: stripe.StripeClient
) -> None:
    """The dedup window is 24 hours of the server's clock."""
    await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))
    stripe_clock.advance(DAY)

    await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 10


@pytest.mark.usefixtures("customer", "meter")
@pytest.mark.parametrize(
    ("offset", "code"),
    [(-35 * DAY - 1, "timestamp_too_far_in_past"), (5 * 60 + 1, "timestamp_in_future")],
)
async def test_a_timestamp_outside_the_window_is_refused(
    stripe_clock: ManualClock, client: stripe.StripeClient, offset: int, code: str
) -> None:
    """Timestamps are within the past 35 days and at most 5 minutes ahead."""
    params = meter_event(timestamp=int(stripe_clock()) + offset)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(params)

    assert (raised.value.code, raised.value.param) == (code, "timestamp")


@pytest.mark.usefixtures("customer", "meter")
@pytest.mark.parametrize("offset", [-35 * DAY, 5 * 60])
async def test_a_timestamp_at_the_edge_of_the_window_is_accepted(
    stripe_clock: ManualClock, client: stripe.StripeClient, offset: int
) -> None:
    """Exactly 35 days back and exactly 5 minutes ahead are still inside."""
    event = await client.v1.billing.meter_events.create_async(
        meter_event(timestamp=int(stripe_clock()) + offset)
    )

    assert event.timestamp == int(stripe_clock()) + offset


@pytest.mark.usefixtures("meter")
async def test_an_event_for_an_unknown_customer_is_refused_when_strict(
    client: stripe.StripeClient,
) -> None:
    """Strict (the default): 400 ``resource_missing`` naming the payload's customer key."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event(customer="cus_nobody"))

    assert (raised.value.code, raised.value.param) == (
        "resource_missing",
        "payload[stripe_customer_id]",
    )


async def test_an_event_for_an_unknown_customer_is_accepted_when_lenient() -> None:
    """``strict_customers=False`` accepts it, as Stripe does (it reports it later)."""
    async with StripeTestServer(clock=ManualClock(), strict_customers=False) as server:
        client = server.stripe_client()
        await client.v1.billing.meters.create_async(
            {
                "display_name": "R",
                "event_name": EVENT_NAME,
                "default_aggregation": {"formula": "sum"},
            }
        )

        await client.v1.billing.meter_events.create_async(meter_event("2", customer="cus_nobody"))

        assert server.state.meter_totals("cus_nobody", EVENT_NAME) == 2


@pytest.mark.usefixtures("customer", "meter")
async def test_a_cancelled_event_stops_counting(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """A ``cancel`` adjustment by identifier takes the event out of the total."""
    await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))
    await client.v1.billing.meter_events.create_async(meter_event("2", identifier="range-2"))

    adjustment = await client.v1.billing.meter_event_adjustments.create_async(
        {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": "range-1"}}
    )

    assert (adjustment.type, adjustment.cancel and adjustment.cancel.identifier) == (
        "cancel",
        "range-1",
    )
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 2
    assert [e.cancelled_at is not None for e in stripe_server.state.events] == [True, False]


@pytest.mark.usefixtures("customer", "meter")
async def test_an_event_older_than_24_hours_cannot_be_cancelled(
    stripe_server: StripeTestServer, stripe_clock: ManualClock, client: stripe.StripeClient
) -> None:
    """Cancellation works only within 24 hours of Stripe receiving the event."""
    await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))
    stripe_clock.advance(DAY)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_event_adjustments.create_async(
            {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": "range-1"}}
        )

    assert raised.value.param == "cancel[identifier]"
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5


@pytest.mark.usefixtures("customer", "meter")
async def test_a_cancelled_identifier_cannot_be_sent_again_within_24_hours(
    client: stripe.StripeClient,
) -> None:
    """Cancel-and-resend needs a new identifier: the old one is still taken."""
    await client.v1.billing.meter_events.create_async(meter_event("5", identifier="range-1"))
    await client.v1.billing.meter_event_adjustments.create_async(
        {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": "range-1"}}
    )

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meter_events.create_async(meter_event("4", identifier="range-1"))

    assert raised.value.code == "duplicate_meter_event"
