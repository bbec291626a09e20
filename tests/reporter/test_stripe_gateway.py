"""StripeGateway through the real stripe SDK against the Stripe test server.

Each test drives the gateway as the reporter would and checks what Stripe
(the test server's state and request log) ends up with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stripe_gateway_support import CUSTOMER, EVENT_NAME, HOUR_AGO, NOW, GatewayFactory, event

from rating_service.reporter.gateway import (
    CreditGrantSpec,
    CreditGrantView,
    MeterEvent,
    PermanentStripeError,
    TransientStripeError,
)
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import ManualClock, StripeTestServer

STREAM = "/v2/billing/meter_event_stream"
SESSION = "/v2/billing/meter_event_session"
GRANTS = "/v1/billing/credit_grants"


def paths(server: StripeTestServer) -> list[tuple[str, int | None]]:
    """(path, status) of every request the server saw, in order."""
    return [(r.path, r.status) for r in server.requests]


def grant_spec(
    bucket_id: str = "bkt_1", *, idempotency_key: str = "credit-grant:bkt_1", **changes: Any
) -> CreditGrantSpec:
    """Bucket ``bucket_id`` of rating customer ``acme``: 50.00 USD for 30 days from now."""
    spec = CreditGrantSpec(
        idempotency_key=idempotency_key,
        stripe_customer_id=CUSTOMER,
        amount_minor=5_000,
        currency="USD",
        category="paid",
        effective_at=NOW,
        expires_at=NOW + timedelta(days=30),
        name="100 resolutions",
        metadata={"rating_customer_id": "acme", "bucket_id": bucket_id},
    )
    return replace(spec, **changes)


# Meter events


@pytest.mark.usefixtures("customer")
async def test_sent_events_are_recorded_and_meter_total_sums_them(
    stripe_server: StripeTestServer, gateway: StripeGateway, meter: str
) -> None:
    """Three events in one stream request; Stripe's summary for the hour is their sum."""
    await gateway.send_meter_events(
        [
            event("cus_a:1-3", 3, at=HOUR_AGO),
            event("cus_a:4-7", 4, at=HOUR_AGO + timedelta(minutes=20)),
            event("cus_a:8-12", 5, at=HOUR_AGO + timedelta(minutes=59, seconds=59)),
        ]
    )

    total = await gateway.meter_total(meter, CUSTOMER, HOUR_AGO, NOW)

    assert total == 12
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 12
    assert [(e.identifier, e.value, e.source) for e in stripe_server.state.events] == [
        ("cus_a:1-3", 3, "stream"),
        ("cus_a:4-7", 4, "stream"),
        ("cus_a:8-12", 5, "stream"),
    ]
    assert [p for p, _ in paths(stripe_server)].count(STREAM) == 1


@pytest.mark.usefixtures("customer")
async def test_an_event_keeps_its_timestamp_to_the_second(
    stripe_server: StripeTestServer, gateway: StripeGateway, meter: str
) -> None:
    """The v2 stream takes an ISO 8601 timestamp; Stripe records the same instant."""
    at = datetime(2025, 12, 31, 23, 17, 42, tzinfo=UTC)

    await gateway.send_meter_events([event("cus_a:1-1", at=at)])

    assert stripe_server.state.events[0].timestamp == int(at.timestamp())


@pytest.mark.usefixtures("customer")
async def test_meter_total_counts_only_its_window_and_customer(
    stripe_server: StripeTestServer, gateway: StripeGateway, meter: str
) -> None:
    """Usage before ``start``, at or after ``end``, or of another customer is not counted."""
    stripe_server.add_customer("cus_b")
    start, end = HOUR_AGO + timedelta(minutes=10), HOUR_AGO + timedelta(minutes=20)
    await gateway.send_meter_events(
        [
            event("a-before", 1, at=start - timedelta(seconds=1)),
            event("a-first", 2, at=start),
            event("a-last", 4, at=end - timedelta(seconds=1)),
            event("a-end", 8, at=end),
            event("b-inside", 16, at=start, customer="cus_b"),
        ]
    )

    assert await gateway.meter_total(meter, CUSTOMER, start, end) == 6
    assert await gateway.meter_total(meter, "cus_b", start, end) == 16


@pytest.mark.usefixtures("customer")
async def test_meter_total_widens_unaligned_bounds_to_whole_minutes(
    stripe_server: StripeTestServer, gateway: StripeGateway, meter: str
) -> None:
    """Stripe takes minute-aligned bounds only: start is floored and end ceiled to the minute."""
    await gateway.send_meter_events([event("a-1", 5, at=HOUR_AGO + timedelta(minutes=10))])

    total = await gateway.meter_total(
        meter,
        CUSTOMER,
        HOUR_AGO + timedelta(minutes=10, seconds=30),
        HOUR_AGO + timedelta(minutes=12, seconds=1),
    )

    summary = stripe_server.requests[-1].response
    assert summary is not None
    window = (summary["data"][0]["start_time"], summary["data"][0]["end_time"])
    start = int((HOUR_AGO + timedelta(minutes=10)).timestamp())
    assert window == (start, start + 3 * 60)
    assert total == 5


async def test_meter_total_of_an_empty_window_is_zero_without_asking_stripe(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """``[t, t)`` holds nothing; an end before the start is a programming error."""
    assert await gateway.meter_total("mtr_any", CUSTOMER, NOW, NOW) == 0
    with pytest.raises(ValueError, match="before start"):
        await gateway.meter_total("mtr_any", CUSTOMER, NOW, HOUR_AGO)
    assert stripe_server.requests == []


@pytest.mark.usefixtures("customer")
async def test_a_repeated_identifier_is_not_an_error_and_not_counted_twice(
    stripe_server: StripeTestServer, gateway: StripeGateway, meter: str
) -> None:
    """Resending an identifier already delivered succeeds, and Stripe keeps the first event only."""
    await gateway.send_meter_events([event("cus_a:1-3", 3)])

    await gateway.send_meter_events([event("cus_a:1-3", 3), event("cus_a:4-5", 2)])

    assert await gateway.meter_total(meter, CUSTOMER, HOUR_AGO, NOW) == 5
    assert stripe_server.state.stream_duplicates == 1


@pytest.mark.usefixtures("customer", "meter")
async def test_one_hundred_events_go_in_one_request(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Up to 100 events are one stream request, the most Stripe takes."""
    await gateway.send_meter_events([event(f"e-{i}") for i in range(100)])

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 100
    assert [p for p, _ in paths(stripe_server)].count(STREAM) == 1


@pytest.mark.parametrize("count", [0, 101])
async def test_no_events_or_more_than_100_is_a_value_error(
    stripe_server: StripeTestServer, gateway: StripeGateway, count: int
) -> None:
    """The caller splits its batches; nothing is sent for a batch Stripe would refuse."""
    with pytest.raises(ValueError, match="1 to 100 events"):
        await gateway.send_meter_events([event(f"e-{i}") for i in range(count)])

    assert stripe_server.requests == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (event("e-1", 0), "not positive"),
        (event("x" * 101), "1 to 100 characters"),
        (event(""), "1 to 100 characters"),
        (event("e-1", at=datetime(2025, 12, 31, 23)), "timezone-aware"),
    ],
)
async def test_an_event_stripe_would_drop_silently_is_a_value_error(
    stripe_server: StripeTestServer, gateway: StripeGateway, bad: MeterEvent, message: str
) -> None:
    """The stream validates later and only reports by webhook, so these are refused up front."""
    with pytest.raises(ValueError, match=message):
        await gateway.send_meter_events([event("fine"), bad])

    assert stripe_server.requests == []


# Meter event sessions


@pytest.mark.usefixtures("customer", "meter")
async def test_one_session_serves_requests_until_its_last_minute(
    stripe_server: StripeTestServer, gateway: StripeGateway, stripe_clock: ManualClock
) -> None:
    """The token is reused for 14 minutes, and renewed before use once less than 60 s are left."""
    await gateway.send_meter_events([event("e-1")])
    stripe_clock.advance(14 * 60)
    await gateway.send_meter_events([event("e-2")])
    stripe_clock.advance(1)
    await gateway.send_meter_events([event("e-3")])

    assert paths(stripe_server)[-5:] == [
        (SESSION, 200),
        (STREAM, 200),
        (STREAM, 200),
        (SESSION, 200),
        (STREAM, 200),
    ]
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 3


@pytest.mark.usefixtures("customer", "meter")
async def test_an_expired_session_is_renewed_once_and_the_same_events_resent(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """401 ``billing_meter_event_session_expired``: a new session, the same request, success."""
    await gateway.send_meter_events([event("e-1")])
    stripe_server.faults.inject("session_expired")

    await gateway.send_meter_events([event("e-2", 2), event("e-3", 3)])

    assert paths(stripe_server)[-3:] == [(STREAM, 401), (SESSION, 200), (STREAM, 200)]
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 6


@pytest.mark.usefixtures("customer", "meter")
async def test_a_session_that_expires_again_after_renewal_is_transient(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Only one renewal per call: a second 401 is left to the reporter's backoff."""
    stripe_server.faults.inject("session_expired", count=2)

    with pytest.raises(TransientStripeError) as raised:
        await gateway.send_meter_events([event("e-1")])

    assert (raised.value.code, raised.value.status) == ("billing_meter_event_session_expired", 401)
    assert stripe_server.state.events == []
    await gateway.send_meter_events([event("e-1")])
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 1


# Faults


@pytest.mark.usefixtures("customer", "meter")
@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("rate_limited", 429),
        ("rate_limited_no_retry", 429),
        ("server_error", 500),
        ("connection_reset", 0),
    ],
)
async def test_a_fault_before_the_events_are_recorded_is_transient_and_a_resend_records_them(
    stripe_server: StripeTestServer, gateway: StripeGateway, fault: str, status: int
) -> None:
    """Nothing is recorded, the SDK does not retry (one stream request), the reporter's resend lands."""
    stripe_server.faults.inject(fault, path=STREAM)

    with pytest.raises(TransientStripeError) as raised:
        await gateway.send_meter_events([event("e-1", 7)])

    assert raised.value.status == status
    assert stripe_server.state.events == []
    assert [p for p, _ in paths(stripe_server)].count(STREAM) == 1
    await gateway.send_meter_events([event("e-1", 7)])
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 7


@pytest.mark.usefixtures("customer", "meter")
async def test_a_timeout_is_transient(
    stripe_server: StripeTestServer, make_gateway: GatewayFactory
) -> None:
    """No answer within the gateway's timeout is a transient error, and nothing was recorded."""
    gateway = make_gateway(timeout=0.3)
    stripe_server.faults.inject("timeout", path=STREAM)

    with pytest.raises(TransientStripeError, match="no answer from Stripe"):
        await gateway.send_meter_events([event("e-1")])

    assert stripe_server.state.events == []


@pytest.mark.usefixtures("customer", "meter")
@pytest.mark.parametrize("fault", ["server_error", "connection_reset", "timeout"])
async def test_an_answer_lost_after_the_events_were_recorded_is_transient_and_a_resend_counts_once(
    stripe_server: StripeTestServer, make_gateway: GatewayFactory, fault: str
) -> None:
    """Stripe has the events although the call failed; the resend's duplicates are dropped."""
    gateway = make_gateway(timeout=0.3)
    stripe_server.faults.inject(fault, path=STREAM, after_apply=True)

    with pytest.raises(TransientStripeError):
        await gateway.send_meter_events([event("e-1", 3), event("e-2", 4)])

    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 7
    await gateway.send_meter_events([event("e-1", 3), event("e-2", 4)])
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 7
    assert stripe_server.state.stream_duplicates == 2


# Customers


@pytest.mark.usefixtures("customer")
async def test_a_known_customer_is_ensured(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """A customer Stripe has passes, once Stripe has been asked about it."""
    await gateway.ensure_customer(CUSTOMER)

    assert [(r.method, r.path, r.status) for r in stripe_server.requests] == [
        ("GET", f"/v1/customers/{CUSTOMER}", 200)
    ]


async def test_an_unknown_customer_is_a_permanent_error(gateway: StripeGateway) -> None:
    """404 ``resource_missing`` parks the customer, with a message naming it."""
    with pytest.raises(PermanentStripeError, match="Stripe has no customer cus_nobody") as raised:
        await gateway.ensure_customer("cus_nobody")

    assert (raised.value.code, raised.value.status) == ("resource_missing", 404)


async def test_a_deleted_customer_is_a_permanent_error(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Stripe still answers for a deleted customer, with ``deleted: true``: that is no customer."""
    stripe_server.add_customer("cus_gone", deleted=True)

    with pytest.raises(PermanentStripeError, match="cus_gone is deleted"):
        await gateway.ensure_customer("cus_gone")


# Credit grants


@pytest.mark.usefixtures("customer")
async def test_a_credit_grant_is_created_as_the_spec_says(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Monetary amount in minor units, metered scope, category, Unix times, name, metadata, key."""
    grant_id = await gateway.create_credit_grant(grant_spec())

    [grant] = stripe_server.state.grants_for(CUSTOMER)
    assert grant["id"] == grant_id
    assert grant["amount"] == {"type": "monetary", "monetary": {"currency": "usd", "value": 5_000}}
    assert grant["applicability_config"] == {"scope": {"price_type": "metered"}}
    assert grant["category"] == "paid"
    assert (grant["effective_at"], grant["expires_at"]) == (
        int(NOW.timestamp()),
        int((NOW + timedelta(days=30)).timestamp()),
    )
    assert grant["name"] == "100 resolutions"
    assert grant["metadata"] == {"rating_customer_id": "acme", "bucket_id": "bkt_1"}
    assert stripe_server.requests[-1].idempotency_key == "credit-grant:bkt_1"


@pytest.mark.usefixtures("customer")
async def test_a_grant_for_given_prices_is_scoped_to_them(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """``price_ids`` become ``applicability_config[scope][prices]``."""
    await gateway.create_credit_grant(grant_spec(price_ids=("price_a", "price_b")))

    [grant] = stripe_server.state.grants_for(CUSTOMER)
    assert grant["applicability_config"] == {
        "scope": {"prices": [{"id": "price_a"}, {"id": "price_b"}]}
    }


@pytest.mark.usefixtures("customer")
async def test_a_long_grant_name_is_shortened_to_stripes_limit(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Stripe refuses names over 100 characters; the gateway shortens rather than fails."""
    await gateway.create_credit_grant(grant_spec(name="n" * 150))

    [grant] = stripe_server.state.grants_for(CUSTOMER)
    assert grant["name"] == "n" * 99 + "…"


@pytest.mark.usefixtures("customer")
async def test_a_bucket_gets_one_grant_even_with_another_idempotency_key(
    stripe_server: StripeTestServer, gateway: StripeGateway, stripe_clock: ManualClock
) -> None:
    """Found by its metadata, after Stripe's 24 h of idempotency: the same id, no second POST."""
    first = await gateway.create_credit_grant(grant_spec(idempotency_key="key-1"))
    stripe_clock.advance(3 * 24 * 3600)

    second = await gateway.create_credit_grant(grant_spec(idempotency_key="key-2"))

    assert second == first
    assert len(stripe_server.state.grants_for(CUSTOMER)) == 1
    assert [r.method for r in stripe_server.requests if r.path == GRANTS] == ["GET", "POST", "GET"]


@pytest.mark.usefixtures("customer")
async def test_each_bucket_gets_its_own_grant(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Another bucket id (same rating customer) is another grant."""
    first = await gateway.create_credit_grant(grant_spec("bkt_1", idempotency_key="k1"))
    second = await gateway.create_credit_grant(grant_spec("bkt_2", idempotency_key="k2"))

    assert first != second
    assert len(stripe_server.state.grants_for(CUSTOMER)) == 2


@pytest.mark.usefixtures("customer")
async def test_a_grant_whose_answer_was_lost_is_found_not_made_twice(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """A 500 after Stripe created the grant is transient; the retry, under a new key, finds it."""
    stripe_server.faults.inject("server_error", path=GRANTS, method="POST", after_apply=True)

    with pytest.raises(TransientStripeError) as raised:
        await gateway.create_credit_grant(grant_spec(idempotency_key="key-1"))
    grant_id = await gateway.create_credit_grant(grant_spec(idempotency_key="key-2"))

    assert raised.value.status == 500
    assert [g["id"] for g in stripe_server.state.grants_for(CUSTOMER)] == [grant_id]


@pytest.mark.usefixtures("customer")
async def test_the_existing_grant_is_found_beyond_the_first_page(
    stripe_server: StripeTestServer, gateway: StripeGateway, stripe_clock: ManualClock
) -> None:
    """Grants are listed newest first, 100 a page: the bucket's old grant is on page two."""
    old = await gateway.create_credit_grant(grant_spec("bkt_old", idempotency_key="old"))
    for i in range(120):
        stripe_server.state.grants.create(
            CUSTOMER,
            {
                "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 1}},
                "applicability_config": {"scope": {"price_type": "metered"}},
                "metadata": {"rating_customer_id": "acme", "bucket_id": f"other-{i}"},
            },
            stripe_clock(),
        )

    found = await gateway.create_credit_grant(grant_spec("bkt_old", idempotency_key="again"))

    assert found == old
    assert len(stripe_server.state.grants_for(CUSTOMER)) == 121


async def test_grant_metadata_must_name_the_rating_customer_and_bucket(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """Without them a grant could never be found again, so the gateway refuses to create it."""
    with pytest.raises(ValueError, match="rating_customer_id and bucket_id"):
        await gateway.create_credit_grant(grant_spec(metadata={"rating_customer_id": "acme"}))

    assert stripe_server.requests == []


async def test_a_grant_for_an_unknown_customer_is_a_permanent_error(
    gateway: StripeGateway,
) -> None:
    """400 ``resource_missing`` on ``customer``."""
    with pytest.raises(PermanentStripeError, match="No such customer") as raised:
        await gateway.create_credit_grant(grant_spec())

    assert (raised.value.code, raised.value.status) == ("resource_missing", 400)


@pytest.mark.usefixtures("customer")
async def test_credit_grants_show_each_grant_and_whether_it_is_voided(
    gateway: StripeGateway,
) -> None:
    """Views carry the amount, currency, times, metadata and the voided flag, newest first."""
    kept = await gateway.create_credit_grant(grant_spec("bkt_1", idempotency_key="k1"))
    voided = await gateway.create_credit_grant(
        grant_spec("bkt_2", idempotency_key="k2", amount_minor=700, currency="jpy")
    )
    await gateway.void_credit_grant(voided)

    views = await gateway.credit_grants(CUSTOMER)

    assert views == [
        CreditGrantView(
            grant_id=voided,
            stripe_customer_id=CUSTOMER,
            amount_minor=700,
            currency="jpy",
            effective_at=NOW,
            expires_at=NOW + timedelta(days=30),
            voided=True,
            metadata={"rating_customer_id": "acme", "bucket_id": "bkt_2"},
        ),
        CreditGrantView(
            grant_id=kept,
            stripe_customer_id=CUSTOMER,
            amount_minor=5_000,
            currency="usd",
            effective_at=NOW,
            expires_at=NOW + timedelta(days=30),
            voided=False,
            metadata={"rating_customer_id": "acme", "bucket_id": "bkt_1"},
        ),
    ]


@pytest.mark.usefixtures("customer")
async def test_voiding_a_grant_already_voided_is_done_not_an_error(
    stripe_server: StripeTestServer, gateway: StripeGateway, stripe_clock: ManualClock
) -> None:
    """After the idempotency window Stripe refuses a second void; the grant is voided all the same."""
    grant_id = await gateway.create_credit_grant(grant_spec())
    await gateway.void_credit_grant(grant_id)
    stripe_clock.advance(2 * 24 * 3600)

    await gateway.void_credit_grant(grant_id)

    assert stripe_server.state.grants_for(CUSTOMER)[0]["voided_at"] is not None
    assert [r.status for r in stripe_server.requests if r.path.endswith("/void")] == [200, 400]


async def test_voiding_an_unknown_grant_is_a_permanent_error(gateway: StripeGateway) -> None:
    """404 ``resource_missing``."""
    with pytest.raises(PermanentStripeError) as raised:
        await gateway.void_credit_grant("credgr_nothing")

    assert (raised.value.code, raised.value.status) == ("resource_missing", 404)


# Meters


async def test_a_created_meter_sums_values_by_stripe_customer_id_and_is_listed(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """The meter the reporter's events need: ``sum`` of ``value``, customer by id."""
    meter_id = await gateway.create_meter(EVENT_NAME, "Resolutions")

    assert await gateway.meter_ids() == {EVENT_NAME: meter_id}
    created = stripe_server.requests[0].response
    assert created is not None
    assert created["display_name"] == "Resolutions"
    assert created["default_aggregation"] == {"formula": "sum"}
    assert created["customer_mapping"] == {
        "event_payload_key": "stripe_customer_id",
        "type": "by_id",
    }
    assert created["value_settings"] == {"event_payload_key": "value"}


async def test_creating_a_meter_that_exists_returns_its_id(
    stripe_server: StripeTestServer, gateway: StripeGateway
) -> None:
    """An earlier answer was lost: Stripe refuses the event name as taken, the gateway finds it."""
    first = await gateway.create_meter(EVENT_NAME, "Resolutions")

    assert await gateway.create_meter(EVENT_NAME, "Resolutions") == first
    assert (stripe_server.requests[1].status, len(stripe_server.state.meters.all())) == (400, 1)


async def test_an_event_name_taken_by_an_inactive_meter_is_a_permanent_error(
    stripe_server: StripeTestServer, gateway: StripeGateway, stripe_clock: ManualClock
) -> None:
    """Reactivating a meter someone deactivated is a human's decision."""
    meter_id = await gateway.create_meter(EVENT_NAME, "Resolutions")
    stripe_server.state.meters.set_active(meter_id, False, stripe_clock())

    with pytest.raises(PermanentStripeError) as raised:
        await gateway.create_meter(EVENT_NAME, "Resolutions")

    assert raised.value.code == "resource_already_exists"


async def test_meter_ids_lists_every_active_meter_across_pages(
    stripe_server: StripeTestServer, gateway: StripeGateway, stripe_clock: ManualClock
) -> None:
    """150 meters take two pages; the 10 inactive ones are left out."""
    meters = stripe_server.state.meters
    for i in range(150):
        meter = meters.create(
            {
                "event_name": f"outcome_{i}",
                "display_name": f"Outcome {i}",
                "default_aggregation": {"formula": "sum"},
            },
            stripe_clock(),
        )
        if i % 15 == 0:
            meters.set_active(meter["id"], False, stripe_clock())

    ids = await gateway.meter_ids()

    assert len(ids) == 140
    assert ids["outcome_1"] == meters.by_event_name("outcome_1")["id"]  # type: ignore[index]
    assert "outcome_0" not in ids
    assert [r.path for r in stripe_server.requests].count("/v1/billing/meters") == 2


# The request-rate limit


async def test_the_gateway_stays_under_the_servers_request_rate() -> None:
    """16 calls at once at 10 requests/s (burst 1) reach Stripe a tenth of a second apart.

    Sent together, they would all arrive at once and overrun the server's
    burst of 5 however slow the machine (the control below); the limit holds
    them back so the server never says 429, and the 16 arrivals span at least
    the 1.5 s that 15 intervals of 0.1 s take.
    """
    async with StripeTestServer(clock=time.time, rate_limit=10, rate_limit_burst=5) as server:
        server.add_customer(CUSTOMER)
        gateway = StripeGateway(
            "sk_test_reporter",
            api_base=server.base_url,
            meter_events_base=server.base_url,
            requests_per_second=10,
        )
        try:
            await asyncio.gather(*(gateway.ensure_customer(CUSTOMER) for _ in range(16)))
        finally:
            await gateway.close()

    arrivals = sorted(r.at for r in server.requests)
    assert [r.status for r in server.requests] == [200] * 16
    assert arrivals[-1] - arrivals[0] >= 1.4, arrivals


async def test_without_the_limit_the_same_calls_meet_429s_as_transient_errors() -> None:
    """The control: 20 calls at once exceed the burst of 5, and the 429s surface as transient."""
    async with StripeTestServer(clock=time.time, rate_limit=10, rate_limit_burst=5) as server:
        server.add_customer(CUSTOMER)
        gateway = StripeGateway(
            "sk_test_reporter",
            api_base=server.base_url,
            meter_events_base=server.base_url,
            requests_per_second=100_000,
        )
        try:
            outcomes = await asyncio.gather(
                *(gateway.ensure_customer(CUSTOMER) for _ in range(20)), return_exceptions=True
            )
        finally:
            await gateway.close()

    refused = [o for o in outcomes if isinstance(o, TransientStripeError)]
    assert refused
    assert [o for o in outcomes if o is not None] == refused
    assert {(e.status, e.code) for e in refused} == {(429, "rate_limit")}


# The constructor


def test_a_missing_api_key_is_refused_at_construction() -> None:
    """A configuration error shows at start-up, not as the first call's failure."""
    with pytest.raises(ValueError, match="API key"):
        StripeGateway("", api_base=None, meter_events_base=None)


async def test_a_gateway_that_never_sent_anything_closes_cleanly(
    gateway_clock: Callable[[], datetime],
) -> None:
    """None keeps the SDK's own addresses (api.stripe.com, meter-events.stripe.com); close() works."""
    gateway = StripeGateway(
        "sk_test_unused", api_base=None, meter_events_base=None, clock=gateway_clock
    )

    await gateway.close()
