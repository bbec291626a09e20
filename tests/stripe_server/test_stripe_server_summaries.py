"""Meter event summaries, computed from the events the server kept."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME, meter_event

from rating_service.testing.stripe_server import ManualClock

HOUR = 3_600
pytestmark = pytest.mark.usefixtures("customer")


async def send(client: stripe.StripeClient, value: str, timestamp: int) -> None:
    await client.v1.billing.meter_events.create_async(meter_event(value, timestamp=timestamp))


async def test_a_summary_adds_up_events_from_start_inclusive_to_end_exclusive(
    client: stripe.StripeClient, meter: stripe.billing.Meter, stripe_clock: ManualClock
) -> None:
    """Events at ``start_time`` count; events at ``end_time`` do not."""
    end = int(stripe_clock())
    start = end - HOUR
    for value, timestamp in (("1", start - 1), ("2", start), ("3", end - 1), ("4", end)):
        await send(client, value, timestamp)

    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter.id, {"customer": CUSTOMER, "start_time": start, "end_time": end}
    )

    assert [(s.start_time, s.end_time, s.aggregated_value) for s in summaries.data] == [
        (start, end, 5)
    ]


async def test_summaries_by_hour_give_one_window_per_hour(
    client: stripe.StripeClient, meter: stripe.billing.Meter, stripe_clock: ManualClock
) -> None:
    """``value_grouping_window=hour``: one summary per hour, oldest first."""
    end = int(stripe_clock())
    start = end - 3 * HOUR
    await send(client, "2", start + 10)
    await send(client, "5", end - 10)

    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        {
            "customer": CUSTOMER,
            "start_time": start,
            "end_time": end,
            "value_grouping_window": "hour",
        },
    )

    assert [s.aggregated_value for s in summaries.data] == [2, 0, 5]


async def test_cancelled_events_are_left_out_of_summaries(
    client: stripe.StripeClient, meter: stripe.billing.Meter, stripe_clock: ManualClock
) -> None:
    """A cancelled event no longer counts in the summary."""
    now = int(stripe_clock())
    await client.v1.billing.meter_events.create_async(
        meter_event("4", identifier="a", timestamp=now - 60)
    )
    await client.v1.billing.meter_event_adjustments.create_async(
        {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": "a"}}
    )

    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter.id, {"customer": CUSTOMER, "start_time": now - HOUR, "end_time": now}
    )

    assert summaries.data[0].aggregated_value == 0


@pytest.mark.usefixtures("meter")
@pytest.mark.parametrize(
    ("window", "start_offset", "param"),
    [(None, 30, "start_time"), ("hour", 60, "start_time")],
)
async def test_summary_bounds_must_be_aligned_to_the_window(
    client: stripe.StripeClient,
    meter: stripe.billing.Meter,
    stripe_clock: ManualClock,
    window: str | None,
    start_offset: int,
    param: str,
) -> None:
    """Minutes without grouping, hours with ``hour``: a misaligned bound is a 400 naming it."""
    end = int(stripe_clock())
    params = {"customer": CUSTOMER, "start_time": end - HOUR + start_offset, "end_time": end}
    if window is not None:
        params["value_grouping_window"] = window

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.meters.event_summaries.list_async(meter.id, params)

    assert raised.value.param == param


@pytest.mark.parametrize(("formula", "expected"), [("count", 3), ("last", 7), ("sum", 10)])
async def test_the_meters_formula_aggregates_the_window(
    client: stripe.StripeClient, stripe_clock: ManualClock, formula: str, expected: int
) -> None:
    """``count`` counts events, ``last`` takes the latest value, ``sum`` adds values."""
    meter = await client.v1.billing.meters.create_async(
        {
            "display_name": formula,
            "event_name": EVENT_NAME,
            "default_aggregation": {"formula": formula},
        }
    )
    now = int(stripe_clock())
    for value, age in (("2", 300), ("7", 60), ("1", 120)):
        await send(client, value, now - age)

    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter.id, {"customer": CUSTOMER, "start_time": now - HOUR, "end_time": now}
    )

    assert summaries.data[0].aggregated_value == expected
