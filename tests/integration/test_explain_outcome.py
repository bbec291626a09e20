"""ExplainOutcome: an outcome's request, price, bucket, history and entries, as the ledger has them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import (
    all_entries,
    amount,
    create_bucket,
    customer_on_rate_card,
    reason,
    record,
    violated_fields,
)

Stub = rating_pb2_grpc.RatingServiceStub
PENDING = pb.OUTCOME_STATE_PENDING


def month_of(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


async def explain(stub: Stub, customer_id: str, outcome_id: str) -> pb.ExplainOutcomeResponse:
    answer: pb.ExplainOutcomeResponse = await stub.ExplainOutcome(
        pb.ExplainOutcomeRequest(customer_id=customer_id, outcome_id=outcome_id)
    )
    return answer


async def ledger_entries_of(stub: Stub, customer_id: str, outcome_id: str) -> list[pb.LedgerEntry]:
    return [e for e in await all_entries(stub, customer_id) if e.outcome_id == outcome_id]


def steps(answer: pb.ExplainOutcomeResponse) -> list[tuple[str, int, datetime | None]]:
    return [
        (
            pb.OutcomeStep.Name(s.step),
            s.ledger_sequence,
            s.period_start.ToDatetime(UTC) if s.HasField("period_start") else None,
        )
        for s in answer.history
    ]


async def test_an_explained_outcome_matches_the_ledger_while_pending_then_settled_then_reversed(
    stub: Stub,
) -> None:
    """At each step the explanation's state, bucket use, history and entries are the ledger's."""
    customer = await customer_on_rate_card(stub, price="0.99")
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    await create_bucket(stub, customer, "annual", 10, valid_from=occurred - timedelta(hours=1))
    request = record(customer, "conv-1", state=PENDING, occurred_at=occurred)
    request.attributes["last_answer_id"] = "ans-42"
    recorded = await stub.RecordOutcome(request)

    pending = await explain(stub, customer, "conv-1")
    assert pending.state == pb.OUTCOME_STATE_PENDING
    assert (pending.outcome_type, pending.occurred_at.ToDatetime(UTC)) == ("resolution", occurred)
    assert dict(pending.attributes) == {"last_answer_id": "ans-42"}
    assert pending.rate_card_id == f"card-{customer}"
    assert pending.rate_card_version == recorded.rate_card_version
    assert amount(pending.unit_price) == amount(recorded.unit_price)
    assert amount(pending.charged) == 0
    assert [(b.bucket.bucket_id, b.use, b.units) for b in pending.buckets] == [
        ("annual", pb.BUCKET_USE_HELD, 1)
    ]
    assert steps(pending) == [("OUTCOME_STEP_RECORDED", recorded.ledger_sequence, None)]
    assert list(pending.entries) == await ledger_entries_of(stub, customer, "conv-1")

    confirmed = await stub.ConfirmOutcome(
        pb.ConfirmOutcomeRequest(customer_id=customer, outcome_id="conv-1")
    )
    settled = await explain(stub, customer, "conv-1")
    this_month = month_of(settled.history[-1].at.ToDatetime(UTC))
    assert settled.state == pb.OUTCOME_STATE_SETTLED
    assert [b.use for b in settled.buckets] == [pb.BUCKET_USE_DRAWN]
    assert steps(settled) == [
        ("OUTCOME_STEP_RECORDED", recorded.ledger_sequence, None),
        ("OUTCOME_STEP_SETTLED", confirmed.ledger_sequence, this_month),
    ]
    assert list(settled.entries) == await ledger_entries_of(stub, customer, "conv-1")

    reversed_ = await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="conv-1", reason="reopened")
    )
    undone = await explain(stub, customer, "conv-1")
    reversal_month = month_of(undone.history[-1].at.ToDatetime(UTC))
    assert undone.state == pb.OUTCOME_STATE_REVERSED
    assert [b.use for b in undone.buckets] == [pb.BUCKET_USE_RETURNED]
    assert steps(undone)[-1] == ("OUTCOME_STEP_REVERSED", reversed_.ledger_sequence, reversal_month)
    ledger = await ledger_entries_of(stub, customer, "conv-1")
    assert list(undone.entries) == ledger
    assert [e.kind for e in ledger] == [
        pb.LEDGER_ENTRY_KIND_OUTCOME_HELD,
        pb.LEDGER_ENTRY_KIND_OUTCOME_RATED,
        pb.LEDGER_ENTRY_KIND_OUTCOME_REVERSED,
    ]
    assert all(len(e.hash) == 64 for e in undone.entries)


async def test_an_outcome_recorded_as_confirmed_records_and_settles_in_one_transaction(
    stub: Stub,
) -> None:
    """Its history is RECORDED and SETTLED at the same sequence; no bucket, charged its price."""
    customer = await customer_on_rate_card(stub, price="1.25")
    recorded = await stub.RecordOutcome(record(customer, "conv-1"))

    answer = await explain(stub, customer, "conv-1")

    assert [(s[0], s[1]) for s in steps(answer)] == [
        ("OUTCOME_STEP_RECORDED", recorded.ledger_sequence),
        ("OUTCOME_STEP_SETTLED", recorded.ledger_sequence),
    ]
    assert list(answer.buckets) == []
    assert amount(answer.charged) == amount(answer.unit_price) == amount(recorded.charged)
    assert [e.sequence for e in answer.entries] == [recorded.ledger_sequence]
    assert list(answer.stripe.meter_events) == []  # no reporter ran


async def test_a_released_outcome_counts_in_no_month(stub: Stub) -> None:
    """Reversed while pending: RECORDED then RELEASED, neither with a period."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))
    await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="conv-1", reason="reopened")
    )

    answer = await explain(stub, customer, "conv-1")

    assert answer.state == pb.OUTCOME_STATE_RELEASED
    assert [(s[0], s[2]) for s in steps(answer)] == [
        ("OUTCOME_STEP_RECORDED", None),
        ("OUTCOME_STEP_RELEASED", None),
    ]


async def test_explaining_an_outcome_never_recorded_is_not_found(stub: Stub) -> None:
    customer = await customer_on_rate_card(stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await explain(stub, customer, "conv-404")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "OUTCOME_NOT_FOUND"


async def test_explaining_for_an_unknown_customer_is_customer_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await explain(stub, "nobody", "conv-1")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "CUSTOMER_NOT_FOUND"


@pytest.mark.parametrize(
    ("customer_id", "outcome_id", "field"),
    [("", "conv-1", "customer_id"), ("acme", "", "outcome_id"), ("acme", "a b", "outcome_id")],
)
async def test_explain_refuses_a_bad_identifier_naming_the_field(
    stub: Stub, customer_id: str, outcome_id: str, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await explain(stub, customer_id, outcome_id)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(raised.value) == "INVALID_FIELD"
    assert violated_fields(raised.value) == [field]
