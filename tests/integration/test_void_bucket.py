"""VoidBucket: undrawn units expire at once; held units stay with their outcomes until they end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, amount, create_bucket, customer_on_rate_card, reason, record

from rating_service.ledger.engine import create_engines
from rating_service.ledger.verify import verify

Stub = rating_pb2_grpc.RatingServiceStub
PENDING = pb.OUTCOME_STATE_PENDING


async def verified(database_url: str) -> list[object]:
    engines = create_engines(database_url)
    try:
        return list((await verify(engines)).problems)
    finally:
        await engines.dispose()


def void(customer: str, bucket_id: str, why: str = "refunded") -> pb.VoidBucketRequest:
    return pb.VoidBucketRequest(customer_id=customer, bucket_id=bucket_id, reason=why)


async def bucket_of(stub: Stub, customer: str, bucket_id: str) -> pb.Bucket:
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    return next(b for b in balance.buckets if b.bucket_id == bucket_id)


async def test_a_void_expires_the_undrawn_units_in_a_bucket_voided_entry(
    stub: Stub, database_url: str
) -> None:
    """10 units, 3 drawn: the void expires 7 (entry BUCKET_VOIDED, units 7, available to
    expired); the bucket is VOIDED with nothing left, and verify passes."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    for i in range(3):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))

    answer = await stub.VoidBucket(void(customer, "annual"))

    assert answer.units_expired == 7
    assert not answer.replayed
    assert answer.bucket.status == pb.BUCKET_STATUS_VOIDED
    assert (answer.bucket.remaining, answer.bucket.held) == (0, 0)
    entry = (await all_entries(stub, customer))[-1]
    assert entry.sequence == answer.ledger_sequence
    assert (entry.kind, entry.bucket_id, entry.units) == (
        pb.LEDGER_ENTRY_KIND_BUCKET_VOIDED,
        "annual",
        7,
    )
    assert sorted((p.account, p.amount) for p in entry.postings) == [
        ("bucket:annual:available", "-7"),
        ("bucket:annual:expired", "7"),
    ]
    assert (await bucket_of(stub, customer, "annual")).status == pb.BUCKET_STATUS_VOIDED
    assert await verified(database_url) == []


async def test_voiding_again_is_a_replay_and_with_another_reason_idempotency_key_reused(
    stub: Stub,
) -> None:
    """The retry answers the first void (same sequence, same units) and writes nothing."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 4)
    first = await stub.VoidBucket(void(customer, "annual"))

    retry = await stub.VoidBucket(void(customer, "annual"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.VoidBucket(void(customer, "annual", why="mistake"))

    assert retry.replayed
    assert (retry.ledger_sequence, retry.units_expired, retry.void_time) == (
        first.ledger_sequence,
        first.units_expired,
        first.void_time,
    )
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(raised.value) == "IDEMPOTENCY_KEY_REUSED"
    assert len(await all_entries(stub, customer)) == 2


async def test_a_voided_bucket_is_never_drawn_again(stub: Stub) -> None:
    """ConsumeBucket naming it is BUCKET_NOT_ACTIVE; an outcome is charged, not covered."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.VoidBucket(void(customer, "annual"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ConsumeBucket(
            pb.ConsumeBucketRequest(
                customer_id=customer, request_id="draw", bucket_id="annual", quantity=1
            )
        )
    outcome = await stub.RecordOutcome(record(customer, "after-the-void"))
    quote = await stub.QuoteCost(
        pb.QuoteCostRequest(customer_id=customer, outcome_type="resolution", quantity=1)
    )

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(raised.value) == "BUCKET_NOT_ACTIVE"
    assert outcome.units_from_buckets == 0
    assert amount(outcome.charged) == amount(outcome.unit_price)
    assert quote.units_covered == 0


async def test_held_units_are_given_up_when_their_outcomes_settle_or_are_released(
    stub: Stub, database_url: str
) -> None:
    """Two pending outcomes hold 2 of 5 units; the void expires the other 3. The confirmed one
    stays covered (its unit is drawn); the released one's unit expires instead of returning,
    so the bucket ends with nothing available, held or drawable, and verify passes."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 5)
    for outcome_id in ("kept", "reopened"):
        await stub.RecordOutcome(record(customer, outcome_id, state=PENDING))

    voided = await stub.VoidBucket(void(customer, "annual"))
    assert voided.units_expired == 3
    assert (voided.bucket.remaining, voided.bucket.held) == (0, 2)

    await stub.ConfirmOutcome(pb.ConfirmOutcomeRequest(customer_id=customer, outcome_id="kept"))
    released = await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="reopened", reason="reopened")
    )

    bucket = await bucket_of(stub, customer, "annual")
    assert (bucket.remaining, bucket.held) == (0, 0)
    assert released.units_returned == 1
    entries = await all_entries(stub, customer)
    settled = next(e for e in entries if e.kind == pb.LEDGER_ENTRY_KIND_OUTCOME_RATED)
    assert amount(settled.amount) == 0
    release = entries[-1]
    assert sorted((p.account, p.amount) for p in release.postings if "bucket" in p.account) == [
        ("bucket:annual:available", "-1"),
        ("bucket:annual:available", "1"),
        ("bucket:annual:expired", "1"),
        ("bucket:annual:held", "-1"),
    ]
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert (balance.period_outcomes, amount(balance.period_charged)) == (1, 0)
    assert await verified(database_url) == []


async def test_an_unknown_bucket_is_not_found_and_an_ended_one_cannot_be_voided(
    stub: Stub,
) -> None:
    customer = await customer_on_rate_card(stub)
    now = datetime.now(UTC)
    await create_bucket(
        stub,
        customer,
        "last-year",
        5,
        valid_from=now - timedelta(days=400),
        valid_until=now - timedelta(days=35),
    )

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.VoidBucket(void(customer, "nowhere"))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await stub.VoidBucket(void(customer, "last-year"))

    assert (missing.value.code(), reason(missing.value)) == (
        grpc.StatusCode.NOT_FOUND,
        "BUCKET_NOT_FOUND",
    )
    assert (ended.value.code(), reason(ended.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "BUCKET_NOT_ACTIVE",
    )
