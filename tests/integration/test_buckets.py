"""Buckets: prepaid units cover outcomes first, in a deterministic order, never twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import amount, create_bucket, customer_on_rate_card, record, usd


async def test_a_bucket_of_100_covers_exactly_100_of_150_concurrent_outcomes(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """100 are covered, 50 are charged USD 49.50 in total, and the bucket ends empty."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await create_bucket(stub, customer, "annual", 100)

    answers = await asyncio.gather(
        *(stub.RecordOutcome(record(customer, f"conv-{i}")) for i in range(150))
    )

    assert sum(a.units_from_buckets for a in answers) == 100
    assert sum(amount(a.charged) for a in answers) == Decimal("49.50")
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert [(b.bucket_id, b.remaining) for b in balance.buckets] == [("annual", 0)]
    assert balance.period_outcomes == 150
    assert amount(balance.period_charged) == Decimal("49.50")


async def test_the_bucket_that_expires_first_is_drawn_first(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Earliest expiry first, then higher priority, then the older bucket."""
    customer = await customer_on_rate_card(stub)
    now = datetime.now(UTC)
    await create_bucket(stub, customer, "late", 1, valid_until=now + timedelta(days=300))
    await create_bucket(stub, customer, "soon-low", 1, valid_until=now + timedelta(days=30))
    await create_bucket(
        stub, customer, "soon-high", 1, valid_until=now + timedelta(days=30), priority=5
    )

    drawn = [(await stub.RecordOutcome(record(customer, f"conv-{i}"))).bucket_id for i in range(4)]

    assert drawn == ["soon-high", "soon-low", "late", ""]


async def test_a_bucket_outside_its_validity_covers_nothing(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """A bucket that starts tomorrow leaves today's outcome billable."""
    customer = await customer_on_rate_card(stub)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    bucket = await create_bucket(stub, customer, "next-year", 10, valid_from=tomorrow)

    answer = await stub.RecordOutcome(record(customer, "conv-1"))

    assert bucket.status == pb.BUCKET_STATUS_SCHEDULED
    assert answer.units_from_buckets == 0
    assert amount(answer.charged) == Decimal("0.99")


async def test_funding_of_99_dollars_at_99_cents_makes_100_units(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """A reallocation funded with money becomes funding / unit price units, rounded down."""
    customer = await customer_on_rate_card(stub, price="0.99")

    bucket = await stub.CreateBucket(
        pb.CreateBucketRequest(
            customer_id=customer,
            bucket_id="seats-moved",
            outcome_type="resolution",
            funding=usd("99.00"),
            source=pb.BUCKET_SOURCE_REALLOCATION,
        )
    )

    assert bucket.quantity == 100
    assert bucket.remaining == 100
    assert amount(bucket.unit_price) == Decimal("0.99")
    assert bucket.source == pb.BUCKET_SOURCE_REALLOCATION
