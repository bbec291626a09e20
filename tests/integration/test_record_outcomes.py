"""RecordOutcomes: one result per item in request order, each item handled as RecordOutcome.

A bad item gets its own ``google.rpc.Status`` (code, message, ErrorInfo and,
for INVALID_ARGUMENT, a BadRequest naming the field by its path in the batch)
and never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import (
    all_entries,
    amount,
    create_bucket,
    customer_on_rate_card,
    execute_directly,
    record,
    usd,
)

Stub = rating_pb2_grpc.RatingServiceStub
Clock = Callable[[], datetime]


def batch(*items: pb.RecordOutcomeRequest) -> pb.RecordOutcomesRequest:
    return pb.RecordOutcomesRequest(requests=items)


def kinds(response: pb.RecordOutcomesResponse) -> list[str | None]:
    """Which half of each result is set: "response" or "error"."""
    return [result.WhichOneof("result") for result in response.results]


def error_infos(status: status_pb2.Status) -> list[tuple[str, str]]:
    """(domain, reason) of every ErrorInfo in a status."""
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found.append((info.domain, info.reason))
    return found


def bad_fields(status: status_pb2.Status) -> list[str]:
    """The fields named by the BadRequest of a status."""
    found: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [v.field for v in bad.field_violations]
    return found


async def sequences_by_outcome(stub: Stub, customer: str) -> dict[str, int]:
    return {e.outcome_id: e.sequence for e in await all_entries(stub, customer)}


async def test_results_come_back_one_per_item_in_request_order(stub: Stub) -> None:
    """Items of three differently priced types: each result carries its own item's price."""
    await stub.PutRateCard(
        pb.PutRateCardRequest(
            rate_card_id="tiers",
            currency_code="USD",
            prices=[
                pb.Price(outcome_type="handoff", unit_price=usd("0.10")),
                pb.Price(outcome_type="resolution", unit_price=usd("0.99")),
                pb.Price(outcome_type="escalation", unit_price=usd("2.50")),
            ],
        )
    )
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="tiers"))
    types = ["handoff", "resolution", "escalation", "resolution", "handoff"]
    items = [
        pb.RecordOutcomeRequest(customer_id="acme", outcome_id=f"conv-{i}", outcome_type=t)
        for i, t in enumerate(types)
    ]

    answer = await stub.RecordOutcomes(batch(*items))

    assert kinds(answer) == ["response"] * 5
    assert [amount(r.response.unit_price) for r in answer.results] == [
        Decimal(p) for p in ("0.10", "0.99", "2.50", "0.99", "0.10")
    ]
    recorded = await sequences_by_outcome(stub, "acme")
    assert [r.response.ledger_sequence for r in answer.results] == [
        recorded[f"conv-{i}"] for i in range(5)
    ]


def bad_identifier(customer: str, clock: Clock) -> pb.RecordOutcomeRequest:
    return record(customer, "conv 1")


def settled_as_input(customer: str, clock: Clock) -> pb.RecordOutcomeRequest:
    return record(customer, "conv-1", state=pb.OUTCOME_STATE_SETTLED)


def in_the_future(customer: str, clock: Clock) -> pb.RecordOutcomeRequest:
    return record(customer, "conv-1", occurred_at=clock() + timedelta(minutes=10))


def unknown_customer(customer: str, clock: Clock) -> pb.RecordOutcomeRequest:
    return record("ghost", "conv-1")


def reused_key(customer: str, clock: Clock) -> pb.RecordOutcomeRequest:
    return record(customer, "conv-old", state=pb.OUTCOME_STATE_PENDING)


def unpriced_type(customer: str, clock: Clock) -> pb.RecordOutcomeRequest:
    return pb.RecordOutcomeRequest(customer_id=customer, outcome_id="conv-1", outcome_type="other")


BAD_ITEMS = [
    pytest.param(
        bad_identifier,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        ["requests[1].outcome_id"],
        id="invalid-outcome_id",
    ),
    pytest.param(
        settled_as_input,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        ["requests[1].state"],
        id="state-settled-as-input",
    ),
    pytest.param(
        in_the_future,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        ["requests[1].occurred_at"],
        id="occurred_at-10-minutes-ahead",
    ),
    pytest.param(
        unknown_customer, grpc.StatusCode.NOT_FOUND, "CUSTOMER_NOT_FOUND", [], id="unknown-customer"
    ),
    pytest.param(
        reused_key, grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED", [], id="reused-key"
    ),
    pytest.param(unpriced_type, grpc.StatusCode.FAILED_PRECONDITION, "NO_PRICE", [], id="no-price"),
]


@pytest.mark.parametrize(("make_bad", "code", "reason", "fields"), BAD_ITEMS)
async def test_a_bad_item_gets_its_own_error_while_its_neighbours_are_recorded(
    stub: Stub,
    clock: Clock,
    make_bad: Callable[[str, Clock], pb.RecordOutcomeRequest],
    code: grpc.StatusCode,
    reason: str,
    fields: list[str],
) -> None:
    """The middle item fails with its code, reason and fields; the first and last are recorded."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-old"))

    answer = await stub.RecordOutcomes(
        batch(record(customer, "conv-a"), make_bad(customer, clock), record(customer, "conv-c"))
    )

    assert kinds(answer) == ["response", "error", "response"]
    error = answer.results[1].error
    assert error.code == code.value[0]
    assert error_infos(error) == [("rating.v1", reason)]
    assert bad_fields(error) == fields
    assert error.message
    assert "Traceback" not in error.message
    assert sorted(await sequences_by_outcome(stub, customer)) == ["conv-a", "conv-c", "conv-old"]


REFUSED = "conv-refused"
REFUSE_ITS_ROW = {
    "sqlite": [
        "CREATE TRIGGER refuse_one_outcome BEFORE INSERT ON outcomes "
        f"WHEN NEW.outcome_id = '{REFUSED}' "
        "BEGIN SELECT RAISE(ABORT, 'injected: outcome row refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_one_outcome() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.outcome_id = '{REFUSED}' THEN RAISE EXCEPTION 'injected: outcome row refused'; "
        "END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_one_outcome BEFORE INSERT ON outcomes "
        "FOR EACH ROW EXECUTE FUNCTION refuse_one_outcome()",
    ],
}
"""A trigger that makes the database refuse one outcome's row: a failure no check of the
service foresees, raised by the real writer's INSERT (not a DomainError)."""


async def test_an_item_that_fails_unexpectedly_does_not_fail_its_neighbours(
    stub: Stub, engine: str, database_url: str
) -> None:
    """The database refuses the middle item's row: it answers INTERNAL, the others are recorded.

    The message says nothing of the cause (no traceback, no SQL); the neighbours
    take sequences 1 and 2, with no gap where the failed item was.
    """
    customer = await customer_on_rate_card(stub)
    await execute_directly(database_url, *REFUSE_ITS_ROW[engine])

    answer = await stub.RecordOutcomes(
        batch(record(customer, "conv-a"), record(customer, REFUSED), record(customer, "conv-c"))
    )

    assert kinds(answer) == ["response", "error", "response"]
    error = answer.results[1].error
    assert error.code == grpc.StatusCode.INTERNAL.value[0]
    assert error_infos(error) == [("rating.v1", "INTERNAL")]
    assert error.message
    assert "Traceback" not in error.message
    assert "injected" not in error.message
    assert await sequences_by_outcome(stub, customer) == {"conv-a": 1, "conv-c": 2}


async def test_a_duplicate_inside_one_batch_is_recorded_once(stub: Stub) -> None:
    """Two copies of one outcome: one transaction, both answer its sequence, one is a replay."""
    customer = await customer_on_rate_card(stub)

    answer = await stub.RecordOutcomes(
        batch(record(customer, "conv-1"), record(customer, "conv-1"))
    )

    assert kinds(answer) == ["response", "response"]
    first, second = (r.response for r in answer.results)
    assert first.ledger_sequence == second.ledger_sequence == 1
    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert len(await all_entries(stub, customer)) == 1


async def test_one_outcome_id_with_two_payloads_in_one_batch_is_recorded_once(
    stub: Stub,
) -> None:
    """One of the two is recorded, the other is refused as IDEMPOTENCY_KEY_REUSED."""
    customer = await customer_on_rate_card(stub)

    answer = await stub.RecordOutcomes(
        batch(
            record(customer, "conv-1"),
            record(customer, "conv-1", state=pb.OUTCOME_STATE_PENDING),
        )
    )

    assert sorted(kinds(answer), key=str) == ["error", "response"]
    error = next(r.error for r in answer.results if r.HasField("error"))
    assert error_infos(error) == [("rating.v1", "IDEMPOTENCY_KEY_REUSED")]
    assert len(await all_entries(stub, customer)) == 1


async def test_an_item_already_recorded_by_record_outcome_is_a_replay(stub: Stub) -> None:
    """The batch answers the original sequence and charge, marked as a replay."""
    customer = await customer_on_rate_card(stub)
    original = await stub.RecordOutcome(record(customer, "conv-1"))

    answer = await stub.RecordOutcomes(batch(record(customer, "conv-1")))

    replay = answer.results[0].response
    assert replay.replayed
    assert (replay.ledger_sequence, replay.charged) == (original.ledger_sequence, original.charged)
    assert len(await all_entries(stub, customer)) == 1


async def test_items_for_several_customers_each_land_in_their_own_ledger(stub: Stub) -> None:
    """Interleaved items of acme and globex: 1, 2, 3 for acme and 1, 2 for globex, in order."""
    acme = await customer_on_rate_card(stub, "acme")
    globex = await customer_on_rate_card(stub, "globex", price="2.00")
    items = [
        record(acme, "a-1"),
        record(globex, "g-1"),
        record(acme, "a-2"),
        record(globex, "g-2"),
        record(acme, "a-3"),
    ]

    answer = await stub.RecordOutcomes(batch(*items))

    assert [amount(r.response.charged) for r in answer.results] == [
        Decimal(p) for p in ("0.99", "2.00", "0.99", "2.00", "0.99")
    ]
    recorded = {
        acme: await sequences_by_outcome(stub, acme),
        globex: await sequences_by_outcome(stub, globex),
    }
    assert recorded == {acme: {"a-1": 1, "a-2": 2, "a-3": 3}, globex: {"g-1": 1, "g-2": 2}}
    assert [r.response.ledger_sequence for r in answer.results] == [
        recorded[item.customer_id][item.outcome_id] for item in items
    ]


async def test_1000_items_in_one_call_are_all_recorded_with_gap_free_sequences(
    stub: Stub,
) -> None:
    """1,000 items over three customers: 1,000 responses; each ledger runs 1..n with no gap."""
    customers = [await customer_on_rate_card(stub, name) for name in ("acme", "globex", "initech")]
    items = [record(customers[i % 3], f"conv-{i}") for i in range(1000)]

    answer = await stub.RecordOutcomes(batch(*items))

    assert kinds(answer) == ["response"] * 1000
    answered: dict[str, list[int]] = defaultdict(list)
    for item, result in zip(items, answer.results, strict=True):
        answered[item.customer_id].append(result.response.ledger_sequence)
    assert {c: sorted(s) for c, s in answered.items()} == {
        "acme": list(range(1, 335)),
        "globex": list(range(1, 334)),
        "initech": list(range(1, 334)),
    }
    for customer in customers:
        ledger = await all_entries(stub, customer)
        assert [e.sequence for e in ledger] == list(range(1, len(answered[customer]) + 1))


async def test_items_of_one_call_draw_a_bucket_in_turn_and_the_rest_are_charged(
    stub: Stub,
) -> None:
    """The writer stages a whole call before writing it: each item sees the draws before it."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await create_bucket(stub, customer, "annual", 3)

    answer = await stub.RecordOutcomes(batch(*(record(customer, f"conv-{i}") for i in range(5))))

    taken = [r.response.units_from_buckets for r in answer.results]
    assert taken == [1, 1, 1, 0, 0]
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert [(b.bucket_id, b.remaining) for b in balance.buckets] == [("annual", 0)]
    assert amount(balance.period_charged) == Decimal("1.98")


async def test_an_item_and_its_confirmation_in_flight_together_settle_it_once(
    stub: Stub,
) -> None:
    """A pending outcome, and then a burst that confirms it while recording others for the
    same customer: whatever batches they share, it settles once and the chain has no gap."""
    customer = await customer_on_rate_card(stub, price="0.99")
    pending = record(customer, "conv-held")
    pending.state = pb.OUTCOME_STATE_PENDING
    await stub.RecordOutcome(pending)

    confirm = stub.ConfirmOutcome(
        pb.ConfirmOutcomeRequest(customer_id=customer, outcome_id="conv-held")
    )
    others = stub.RecordOutcomes(batch(*(record(customer, f"conv-{i}") for i in range(20))))
    await asyncio.gather(confirm, others)

    entries = await all_entries(stub, customer)
    assert [e.sequence for e in entries] == list(range(1, 23))
    settled = [e for e in entries if e.outcome_id == "conv-held"]
    assert len(settled) == 2  # held, then settled
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert balance.period_outcomes == 21
    assert balance.pending_outcomes == 0
