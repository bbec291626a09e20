"""Exact ranges, decided before writing: what the ledger keeps, and what it refuses to.

Each case once wrote a value the ledger cannot keep exactly (a float, a time
past the calendar, a currency nobody pays in) or answered INTERNAL. Every
refusal here names the field and writes nothing; every acceptance is priced.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.type import money_pb2
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, reason, record, ts, violated_fields

Stub = rating_pb2_grpc.RatingServiceStub


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value


async def test_a_currency_that_is_not_iso_4217_is_refused(stub: Stub) -> None:
    """``ZZZ`` has the shape of a code but is no currency: INVALID_ARGUMENT on the field."""
    request = pb.PutRateCardRequest(
        rate_card_id="card",
        currency_code="ZZZ",
        prices=[
            pb.Price(
                outcome_type="resolution",
                unit_price=money_pb2.Money(currency_code="ZZZ", nanos=990_000_000),
            )
        ],
    )

    error = await refusal(stub.PutRateCard(request))

    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert "currency_code" in violated_fields(error)


async def test_a_bucket_priced_in_another_currency_than_its_customers_card_is_refused(
    stub: Stub,
) -> None:
    """A EUR bucket for a customer billed in USD would credit money of the wrong kind."""
    customer = await customer_on_rate_card(stub)
    request = pb.CreateBucketRequest(
        customer_id=customer,
        bucket_id="eur",
        outcome_type="resolution",
        quantity=10,
        unit_price=money_pb2.Money(currency_code="EUR", nanos=900_000_000),
    )

    error = await refusal(stub.CreateBucket(request))

    assert (error.code(), violated_fields(error)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["unit_price.currency_code"],
    )
    assert await all_entries(stub, customer) == []


async def test_a_bucket_whose_default_end_is_past_the_calendar_is_refused_not_internal(
    stub: Stub,
) -> None:
    """valid_from 9999-06-01 without valid_until: a year later does not exist."""
    customer = await customer_on_rate_card(stub)
    request = pb.CreateBucketRequest(
        customer_id=customer,
        bucket_id="late",
        outcome_type="resolution",
        quantity=10,
        valid_from=ts(datetime(9999, 6, 1, tzinfo=UTC)),
    )

    error = await refusal(stub.CreateBucket(request))

    assert (error.code(), violated_fields(error)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["valid_until"],
    )
    assert await all_entries(stub, customer) == []


async def test_a_first_rate_card_version_prices_outcomes_from_the_beginning_of_time(
    stub: Stub,
) -> None:
    """ "From the beginning of time" is 0001-01-01, not 1970: an outcome of 1900 has a price."""
    customer = await customer_on_rate_card(stub)

    recorded = await stub.RecordOutcome(
        record(customer, "old", occurred_at=datetime(1900, 1, 1, tzinfo=UTC))
    )

    assert recorded.rate_card_version.ToDatetime(tzinfo=UTC) == datetime(1, 1, 1, tzinfo=UTC)
    assert (recorded.charged.units, recorded.charged.nanos) == (0, 990_000_000)
