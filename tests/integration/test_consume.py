"""ConsumeBucket: all or nothing, never below zero, even under concurrency."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, create_bucket, customer_on_rate_card, reason


def consume(customer: str, request_id: str, quantity: int) -> pb.ConsumeBucketRequest:
    return pb.ConsumeBucketRequest(
        customer_id=customer, request_id=request_id, outcome_type="resolution", quantity=quantity
    )


async def test_300_concurrent_draws_of_one_unit_from_100_succeed_exactly_100_times(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """200 get INSUFFICIENT_UNITS and the bucket ends at exactly zero."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 100)

    answers = await asyncio.gather(
        *(stub.ConsumeBucket(consume(customer, f"draw-{i}", 1)) for i in range(300)),
        return_exceptions=True,
    )

    succeeded = [a for a in answers if isinstance(a, pb.ConsumeBucketResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(succeeded) == 100
    assert len(refused) == 200
    assert {(e.code(), reason(e)) for e in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_UNITS")
    }
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert balance.buckets[0].remaining == 0


async def test_a_draw_larger_than_what_is_left_consumes_nothing(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Asking 11 of 10 fails and leaves all 10 in the bucket and nothing in the ledger."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ConsumeBucket(consume(customer, "too-much", 11))

    assert reason(raised.value) == "INSUFFICIENT_UNITS"
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert balance.buckets[0].remaining == 10
    assert [e.kind for e in await all_entries(stub, customer)] == [
        pb.LEDGER_ENTRY_KIND_BUCKET_CREATED
    ]


async def test_a_draw_spans_buckets_in_burn_down_order_and_reports_what_is_left(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """7 units from buckets of 5 and 5: lines of 5 and 2, 3 left in total."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "first", 5, priority=2)
    await create_bucket(stub, customer, "second", 5, priority=1)

    answer = await stub.ConsumeBucket(consume(customer, "draw-1", 7))

    assert answer.consumed == 7
    assert [(line.bucket_id, line.units, line.remaining) for line in answer.lines] == [
        ("first", 5, 0),
        ("second", 2, 3),
    ]
    assert answer.remaining_total == 3


async def test_a_retried_draw_is_answered_from_the_first_and_draws_nothing_more(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Same request_id, same payload: the original answer, marked as a replay."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    first = await stub.ConsumeBucket(consume(customer, "draw-1", 4))

    retry = await stub.ConsumeBucket(consume(customer, "draw-1", 4))

    assert retry.replayed
    assert not first.replayed
    assert retry.ledger_sequence == first.ledger_sequence
    assert retry.remaining_total == 6
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert balance.buckets[0].remaining == 6
