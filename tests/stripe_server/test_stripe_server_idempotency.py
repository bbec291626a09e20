"""``Idempotency-Key`` on POSTs: replay, conflict, expiry."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import CUSTOMER, EVENT_NAME, credit_grant, meter_event

from rating_service.testing.stripe_server import ManualClock, StripeTestServer
from rating_service.testing.stripe_server._errors import StripeError
from rating_service.testing.stripe_server._idempotency import IdempotencyKeys

DAY = 86_400
pytestmark = pytest.mark.usefixtures("customer")


@pytest.mark.usefixtures("meter")
async def test_the_same_key_and_parameters_replay_the_saved_response(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """The second call gets the first answer, marked ``Idempotent-Replayed``; it runs once."""
    first = await client.v1.billing.meter_events.create_async(
        meter_event("5", identifier="range-1"), {"idempotency_key": "report-1"}
    )

    again = await client.v1.billing.meter_events.create_async(
        meter_event("5", identifier="range-1"), {"idempotency_key": "report-1"}
    )

    assert again.to_dict() == first.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert stripe_server.state.meter_totals(CUSTOMER, EVENT_NAME) == 5
    assert [r.replayed for r in stripe_server.requests[-2:]] == [False, True]


async def test_the_same_key_with_other_parameters_is_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    """400 ``idempotency_error``: the SDK raises ``IdempotencyError``."""
    await client.v1.billing.credit_grants.create_async(
        credit_grant(value=100), {"idempotency_key": "bucket-1"}
    )

    with pytest.raises(stripe.IdempotencyError) as raised:
        await client.v1.billing.credit_grants.create_async(
            credit_grant(value=999), {"idempotency_key": "bucket-1"}
        )

    assert raised.value.http_status == 400
    assert raised.value.json_body is not None
    assert raised.value.json_body["error"]["type"] == "idempotency_error"


async def test_the_same_key_on_another_endpoint_is_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    """A key belongs to the request it was first used for, endpoint included."""
    await client.v1.customers.create_async({}, {"idempotency_key": "k-1"})

    with pytest.raises(stripe.IdempotencyError):
        await client.v1.billing.credit_grants.create_async(
            credit_grant(), {"idempotency_key": "k-1"}
        )


async def test_parameter_order_does_not_make_a_different_request(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """The same parameters in another order are the same request: a replay."""
    params = credit_grant(metadata={"a": "1", "b": "2"})
    reordered = dict(reversed(list(credit_grant(metadata={"b": "2", "a": "1"}).items())))
    await client.v1.billing.credit_grants.create_async(params, {"idempotency_key": "bucket-1"})

    await client.v1.billing.credit_grants.create_async(reordered, {"idempotency_key": "bucket-1"})

    assert len(stripe_server.state.grants_for(CUSTOMER)) == 1


async def test_a_key_is_forgotten_after_24_hours(
    stripe_server: StripeTestServer, stripe_clock: ManualClock, client: stripe.StripeClient
) -> None:
    """After 24 hours of the server clock the key is new again: the operation runs again."""
    await client.v1.billing.credit_grants.create_async(
        credit_grant(), {"idempotency_key": "bucket-1"}
    )
    stripe_clock.advance(DAY)

    await client.v1.billing.credit_grants.create_async(
        credit_grant(), {"idempotency_key": "bucket-1"}
    )

    assert len(stripe_server.state.grants_for(CUSTOMER)) == 2


@pytest.mark.usefixtures("meter")
async def test_an_error_the_operation_returned_is_replayed_too(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """Once an operation ran, its answer is saved whatever it was, a 400 included."""
    await client.v1.billing.meter_events.create_async(meter_event("1", identifier="range-1"))
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.billing.meter_events.create_async(
                meter_event("1", identifier="range-1"), {"idempotency_key": "retry-1"}
            )

    assert [(r.status, r.replayed) for r in stripe_server.requests[-2:]] == [
        (400, False),
        (400, True),
    ]


async def test_a_request_the_spec_refused_is_not_saved_under_its_key(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """A 400 from parameter validation happens before the idempotency layer: retry can succeed."""
    bad = credit_grant(category="gift")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing.credit_grants.create_async(bad, {"idempotency_key": "bucket-1"})

    grant = await client.v1.billing.credit_grants.create_async(
        credit_grant(), {"idempotency_key": "bucket-1"}
    )

    assert grant.id.startswith("credgr_")


def test_a_key_still_running_is_a_409_idempotency_key_in_use() -> None:
    """A second request with a key whose first request has not finished: 409, which the SDK retries."""
    keys = IdempotencyKeys()
    keys.begin("k-1", "request", now=0.0)

    with pytest.raises(StripeError) as raised:
        keys.begin("k-1", "request", now=1.0)

    assert (raised.value.status, raised.value.code) == (409, "idempotency_key_in_use")
