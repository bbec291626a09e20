"""Exact ranges, decided before writing: what the ledger keeps, and what it refuses to.

Each case once wrote a value the ledger cannot keep exactly (a float, a time
past the calendar, a currency nobody pays in) or answered INTERNAL. Every
refusal here names the field and writes nothing; every acceptance is priced.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from google.type import money_pb2
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, reason, record, ts, violated_fields

Stub = rating_pb2_grpc.RatingServiceStub


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value


def rate_card(price: money_pb2.Money) -> pb.PutRateCardRequest:
    """A card with one price, in the price's currency."""
    return pb.PutRateCardRequest(
        rate_card_id="card",
        currency_code=price.currency_code,
        prices=[pb.Price(outcome_type="resolution", unit_price=price)],
    )


async def test_a_currency_that_is_not_iso_4217_is_refused(stub: Stub) -> None:
    """``ZZZ`` has the shape of a code but is no currency: INVALID_ARGUMENT on the field."""
    request = rate_card(money_pb2.Money(currency_code="ZZZ", nanos=990_000_000))

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


async def test_a_price_past_the_highest_is_refused_on_the_field(stub: Stub) -> None:
    """The reproduction's USD 9,223,372,036 price is refused before anything is stored."""
    request = rate_card(money_pb2.Money(currency_code="USD", units=9_223_372_036))

    error = await refusal(stub.PutRateCard(request))

    assert violated_fields(error) == ["prices[0].unit_price"]


async def test_outcomes_that_would_take_a_months_total_past_the_range_are_refused_exactly(
    stub: Stub,
) -> None:
    """At the highest price, a month's charges fit 9,223 outcomes; the 9,224th is refused.

    It answers FAILED_PRECONDITION / AMOUNT_OUT_OF_RANGE and writes nothing;
    the balance still reads (no float was stored) and the ledger verifies.
    """
    customer = await customer_on_rate_card(stub, price="1000000")
    fits = (2**63 - 1) // (1_000_000 * 10**9)
    answers: list[pb.RecordOutcomeResult] = []
    for start in range(0, fits + 2, 1000):
        batch = [record(customer, f"o-{i}") for i in range(start, min(start + 1000, fits + 2))]
        response = await stub.RecordOutcomes(pb.RecordOutcomesRequest(requests=batch))
        answers.extend(response.results)

    refused = [
        (i, r.error.code, reason_of(r.error)) for i, r in enumerate(answers) if r.HasField("error")
    ]
    assert refused == [
        (fits, grpc.StatusCode.FAILED_PRECONDITION.value[0], "AMOUNT_OUT_OF_RANGE"),
        (fits + 1, grpc.StatusCode.FAILED_PRECONDITION.value[0], "AMOUNT_OUT_OF_RANGE"),
    ]
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert (balance.period_outcomes, balance.period_charged.units) == (fits, fits * 1_000_000)
    assert balance.ledger_sequence == fits


def reason_of(status: status_pb2.Status) -> str:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""
