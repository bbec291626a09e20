"""Times and durations on the wire, through the real server: what a Timestamp or a Duration
can carry but the ledger cannot keep is INVALID_ARGUMENT naming the field, never INTERNAL.

The ledger keeps instants and durations as whole microseconds, so a finer one is refused
rather than silently cut (a retry differing by a nanosecond would otherwise be taken for
the same payload); a Timestamp must lie within 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z
and have nanos within 0 .. 999,999,999.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import customer_on_rate_card, usd, violated_fields

Stub = rating_pb2_grpc.RatingServiceStub
CUSTOMER = "acme"
FIRST_SECOND = -62_135_596_800  # 0001-01-01T00:00:00Z
LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


@pytest.fixture
def engine() -> str:
    """Times are refused or converted before any storage: one engine is enough here."""
    return "sqlite"


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def price(window: duration_pb2.Duration | None = None) -> pb.Price:
    p = pb.Price(outcome_type="resolution", unit_price=usd("0.99"))
    if window is not None:
        p.settlement_window.CopyFrom(window)
    return p


def bucket(**times: timestamp_pb2.Timestamp) -> pb.CreateBucketRequest:
    return pb.CreateBucketRequest(
        customer_id=CUSTOMER, bucket_id="b", outcome_type="resolution", quantity=1, **times
    )


BUCKET = pb.CreateBucketRequest(
    customer_id=CUSTOMER, bucket_id="b", outcome_type="resolution", quantity=1
)
# Each Timestamp field of a request: (rpc, a request without it, the field's name).
TIMESTAMP_FIELDS: list[tuple[str, Message, str]] = [
    (
        "RecordOutcome",
        pb.RecordOutcomeRequest(customer_id=CUSTOMER, outcome_id="o", outcome_type="resolution"),
        "occurred_at",
    ),
    (
        "QuoteCost",
        pb.QuoteCostRequest(customer_id=CUSTOMER, outcome_type="resolution", quantity=1),
        "at",
    ),
    ("CreateBucket", BUCKET, "valid_from"),
    ("CreateBucket", BUCKET, "valid_until"),
    (
        "PutRateCard",
        pb.PutRateCardRequest(rate_card_id="card", currency_code="USD", prices=[price()]),
        "effective_from",
    ),
]


def at_time(request: Message, field: str, at: timestamp_pb2.Timestamp) -> Message:
    """A copy of ``request`` with its Timestamp ``field`` set to ``at``."""
    timed = type(request)()
    timed.CopyFrom(request)
    getattr(timed, field).CopyFrom(at)
    return timed


UNKEEPABLE_TIMESTAMPS = {
    "before-year-1": stamp(FIRST_SECOND - 1),
    "after-year-9999": stamp(LAST_SECOND + 1),
    "far-past": stamp(-(2**62)),
    "far-future": stamp(2**62),
    "negative-nanos": stamp(0, -1),
    "nanos-of-a-whole-second": stamp(0, 10**9),
    "one-nanosecond": stamp(0, 1),
    "half-a-microsecond": stamp(1_700_000_000, 1_500),
    "the-last-nanosecond": stamp(LAST_SECOND, 999_999_999),
}


@pytest.fixture
async def acme(stub: Stub) -> str:
    return await customer_on_rate_card(stub, CUSTOMER)


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


@pytest.mark.usefixtures("acme")
@pytest.mark.parametrize(
    ("rpc", "request_", "field"),
    [pytest.param(*f, id=f"{f[0]}.{f[2]}") for f in TIMESTAMP_FIELDS],
)
@pytest.mark.parametrize(
    "at", list(UNKEEPABLE_TIMESTAMPS.values()), ids=list(UNKEEPABLE_TIMESTAMPS)
)
async def test_a_timestamp_the_ledger_cannot_keep_is_refused_naming_its_field(
    stub: Stub,
    rpc: str,
    request_: Message,
    field: str,
    at: timestamp_pb2.Timestamp,
) -> None:
    error = await refusal(getattr(stub, rpc)(at_time(request_, field, at)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == [field]


@pytest.mark.usefixtures("acme")
async def test_a_batch_item_with_a_sub_microsecond_time_is_refused_alone(stub: Stub) -> None:
    """RecordOutcomes: the item names requests[0].occurred_at; its neighbour is recorded."""
    bad, good = (
        pb.RecordOutcomeRequest(
            customer_id=CUSTOMER, outcome_id=f"o-{i}", outcome_type="resolution"
        )
        for i in range(2)
    )
    bad.occurred_at.CopyFrom(stamp(1_700_000_000, 1))

    response = await stub.RecordOutcomes(pb.RecordOutcomesRequest(requests=[bad, good]))

    error, recorded = response.results
    assert error.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "requests[0].occurred_at" in error.error.message
    assert recorded.WhichOneof("result") == "response"


@pytest.mark.usefixtures("acme")
@pytest.mark.parametrize(
    "at",
    [stamp(FIRST_SECOND), stamp(LAST_SECOND, 999_999_000), stamp(1_700_000_000, 123_456_000)],
    ids=["first-instant", "last-microsecond", "whole-microseconds"],
)
async def test_a_timestamp_in_whole_microseconds_within_its_range_is_kept_exactly(
    stub: Stub, at: timestamp_pb2.Timestamp
) -> None:
    """A rate-card version effective at it answers with the same seconds and nanos."""
    put = await stub.PutRateCard(
        pb.PutRateCardRequest(
            rate_card_id="card", currency_code="USD", prices=[price()], effective_from=at
        )
    )
    quote = await stub.QuoteCost(
        pb.QuoteCostRequest(customer_id=CUSTOMER, outcome_type="resolution", quantity=1, at=at)
    )

    assert put.version.effective_from == at
    assert quote.unit_price == usd("0.99")


@pytest.mark.parametrize(
    "window",
    [
        duration_pb2.Duration(nanos=1),
        duration_pb2.Duration(seconds=60, nanos=1_500),
        duration_pb2.Duration(seconds=3600, nanos=999_999_999),
    ],
    ids=["one-nanosecond", "a-minute-and-1.5-microseconds", "an-hour-and-a-nanosecond-short"],
)
async def test_a_duration_finer_than_a_microsecond_is_refused(
    stub: Stub, window: duration_pb2.Duration
) -> None:
    request = pb.PutRateCardRequest(
        rate_card_id="card", currency_code="USD", prices=[price(window)]
    )

    error = await refusal(stub.PutRateCard(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["prices[0].settlement_window"]
    assert "whole number of microseconds" in (error.details() or "")


async def test_a_duration_in_whole_microseconds_is_kept_exactly(stub: Stub) -> None:
    window = duration_pb2.Duration(seconds=3600, nanos=1_000)

    put = await stub.PutRateCard(
        pb.PutRateCardRequest(rate_card_id="card", currency_code="USD", prices=[price(window)])
    )

    assert put.version.prices[0].settlement_window == window
