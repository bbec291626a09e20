"""Idempotency: a retried outcome is one ledger transaction, whatever the timing."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, reason, record


async def test_the_same_outcome_sent_twice_is_recorded_once(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The retry answers the original sequence, marked as a replay."""
    customer = await customer_on_rate_card(stub)

    first = await stub.RecordOutcome(record(customer, "conv-1"))
    second = await stub.RecordOutcome(record(customer, "conv-1"))

    assert (first.ledger_sequence, first.replayed) == (1, False)
    assert (second.ledger_sequence, second.replayed) == (1, True)
    assert second.charged == first.charged
    assert len(await all_entries(stub, customer)) == 1


async def test_fifty_concurrent_copies_of_one_outcome_make_one_transaction(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """All 50 answers carry the same sequence and exactly one is not a replay."""
    customer = await customer_on_rate_card(stub)

    answers = await asyncio.gather(
        *(stub.RecordOutcome(record(customer, "conv-1")) for _ in range(50))
    )

    assert {a.ledger_sequence for a in answers} == {1}
    assert sum(not a.replayed for a in answers) == 1
    assert len(await all_entries(stub, customer)) == 1


async def test_an_outcome_id_reused_with_another_payload_is_refused_and_writes_nothing(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Same outcome_id, different state: ALREADY_EXISTS / IDEMPOTENCY_KEY_REUSED."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-1"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RecordOutcome(record(customer, "conv-1", state=pb.OUTCOME_STATE_PENDING))

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(raised.value) == "IDEMPOTENCY_KEY_REUSED"
    assert len(await all_entries(stub, customer)) == 1


async def test_a_retry_that_leaves_occurred_at_unset_is_the_same_payload(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """An absent occurred_at defaults to now but is compared as sent, so retries replay."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-1"))
    await asyncio.sleep(0.01)

    retry = await stub.RecordOutcome(record(customer, "conv-1"))

    assert retry.replayed
