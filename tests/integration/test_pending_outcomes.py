"""Pending outcomes: they hold a bucket unit or their charge until they settle or are reversed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, amount, create_bucket, customer_on_rate_card, reason, record

if TYPE_CHECKING:
    from conftest import MovableClock

PENDING = pb.OUTCOME_STATE_PENDING
SWEEP_DEADLINE = 10.0  # seconds; the sweep runs every 0.05 s


async def balance_of(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str
) -> pb.GetBalanceResponse:
    answer: pb.GetBalanceResponse = await stub.GetBalance(
        pb.GetBalanceRequest(customer_id=customer_id)
    )
    return answer


async def bucket_of(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str, bucket_id: str
) -> pb.Bucket:
    balance = await balance_of(stub, customer_id)
    return next(b for b in balance.buckets if b.bucket_id == bucket_id)


async def balance_once_settled(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str
) -> pb.GetBalanceResponse:
    """Polls GetBalance (bounded) until no outcome is pending, and returns that balance."""
    deadline = asyncio.get_running_loop().time() + SWEEP_DEADLINE
    while True:
        balance = await balance_of(stub, customer_id)
        if balance.pending_outcomes == 0 or asyncio.get_running_loop().time() > deadline:
            return balance
        await asyncio.sleep(0.05)


async def entry_once_written(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str, kind: int
) -> pb.LedgerEntry:
    """Polls the ledger (bounded) until an entry of ``kind`` appears, and returns the first."""
    deadline = asyncio.get_running_loop().time() + SWEEP_DEADLINE
    while True:
        found = [e for e in await all_entries(stub, customer_id) if e.kind == kind]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"no entry of kind {kind} appeared"
        await asyncio.sleep(0.05)


def reverse(customer_id: str, outcome_id: str) -> pb.ReverseOutcomeRequest:
    return pb.ReverseOutcomeRequest(
        customer_id=customer_id, outcome_id=outcome_id, reason="conversation_reopened"
    )


def confirm(customer_id: str, outcome_id: str) -> pb.ConfirmOutcomeRequest:
    return pb.ConfirmOutcomeRequest(customer_id=customer_id, outcome_id=outcome_id)


# ---- recording ----------------------------------------------------------------------


async def test_a_pending_outcome_says_it_holds_a_bucket_unit(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Its answer is PENDING with the unit it holds, nothing charged, and when it settles."""
    customer = await customer_on_rate_card(stub)
    occurred = datetime.now(UTC).replace(microsecond=0)
    await create_bucket(stub, customer, "annual", 10, valid_from=occurred - timedelta(hours=1))

    answer = await stub.RecordOutcome(
        record(customer, "conv-1", state=PENDING, occurred_at=occurred)
    )

    assert answer.state == pb.OUTCOME_STATE_PENDING
    assert answer.units_from_buckets == 1
    assert answer.bucket_id == "annual"
    assert amount(answer.charged) == 0
    assert answer.settles_at.ToDatetime(UTC) == occurred + timedelta(hours=24)


async def test_a_pending_outcome_says_what_it_will_be_charged_without_a_bucket(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Without a bucket its answer is PENDING, no unit, charged the price it will take."""
    customer = await customer_on_rate_card(stub, price="0.99")

    answer = await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    assert answer.state == pb.OUTCOME_STATE_PENDING
    assert answer.units_from_buckets == 0
    assert amount(answer.charged) == Decimal("0.99")


async def test_a_pending_outcome_holds_one_bucket_unit_and_is_not_billed(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The bucket shows one held unit and one fewer remaining; the month counts nothing."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)

    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    balance = await balance_of(stub, customer)
    assert [(b.bucket_id, b.remaining, b.held) for b in balance.buckets] == [("annual", 9, 1)]
    assert balance.pending_outcomes == 1
    assert amount(balance.pending_charge) == 0
    assert balance.period_outcomes == 0
    assert amount(balance.period_charged) == 0


async def test_a_pending_outcome_without_a_bucket_holds_its_charge_and_is_not_billed(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Pending counts it with its charge; the month's usage and charges stay at zero."""
    customer = await customer_on_rate_card(stub, price="0.99")

    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    balance = await balance_of(stub, customer)
    assert balance.pending_outcomes == 1
    assert amount(balance.pending_charge) == Decimal("0.99")
    assert balance.period_outcomes == 0
    assert amount(balance.period_charged) == 0


async def test_a_unit_held_by_a_pending_outcome_is_not_drawn_again(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """With a one-unit bucket held, the next outcome is billed at the price."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await create_bucket(stub, customer, "single", 1)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    answer = await stub.RecordOutcome(record(customer, "conv-2"))

    assert answer.units_from_buckets == 0
    assert amount(answer.charged) == Decimal("0.99")


# ---- confirming -----------------------------------------------------------------------


async def test_confirming_a_pending_outcome_bills_it_this_month(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The confirmation settles it: the month counts it and nothing is pending any more."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    answer = await stub.ConfirmOutcome(confirm(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert answer.state == pb.OUTCOME_STATE_SETTLED
    assert not answer.replayed
    assert (balance.period_outcomes, amount(balance.period_charged)) == (1, Decimal("0.99"))
    assert (balance.pending_outcomes, amount(balance.pending_charge)) == (0, 0)


async def test_confirming_a_pending_outcome_moves_its_held_unit_to_drawn(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The bucket's hold becomes a draw: held back to 0, remaining stays one down."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    await stub.ConfirmOutcome(confirm(customer, "conv-1"))

    bucket = await bucket_of(stub, customer, "annual")
    balance = await balance_of(stub, customer)
    assert (bucket.remaining, bucket.held) == (9, 0)
    assert (balance.period_outcomes, amount(balance.period_charged)) == (1, 0)


async def test_confirming_twice_is_a_replay_that_writes_nothing(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The second confirmation answers with the first's sequence, marked replayed."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))
    first = await stub.ConfirmOutcome(confirm(customer, "conv-1"))

    again = await stub.ConfirmOutcome(confirm(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert again.replayed
    assert again.ledger_sequence == first.ledger_sequence
    assert again.state == pb.OUTCOME_STATE_SETTLED
    assert balance.ledger_sequence == first.ledger_sequence
    assert balance.period_outcomes == 1


async def test_confirming_an_outcome_that_was_never_recorded_is_not_found(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """NOT_FOUND with reason OUTCOME_NOT_FOUND."""
    customer = await customer_on_rate_card(stub)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ConfirmOutcome(confirm(customer, "never"))

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "OUTCOME_NOT_FOUND"


async def test_reversing_an_outcome_that_was_never_recorded_is_not_found(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """NOT_FOUND with reason OUTCOME_NOT_FOUND."""
    customer = await customer_on_rate_card(stub)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ReverseOutcome(reverse(customer, "never"))

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "OUTCOME_NOT_FOUND"


@pytest.mark.parametrize(
    "state", [PENDING, pb.OUTCOME_STATE_CONFIRMED], ids=["released", "reversed"]
)
async def test_confirming_a_reversed_outcome_is_refused(
    stub: rating_pb2_grpc.RatingServiceStub, state: int
) -> None:
    """FAILED_PRECONDITION with reason OUTCOME_REVERSED, whether it was pending or settled."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-1", state=state))
    await stub.ReverseOutcome(reverse(customer, "conv-1"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ConfirmOutcome(confirm(customer, "conv-1"))

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(raised.value) == "OUTCOME_REVERSED"


# ---- releasing a pending outcome --------------------------------------------------------


async def test_reversing_a_pending_outcome_releases_its_unit_with_no_charge(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """RELEASED, one unit returned, nothing refunded; the bucket is whole again."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    bucket = await bucket_of(stub, customer, "annual")
    assert answer.state == pb.OUTCOME_STATE_RELEASED
    assert answer.units_returned == 1
    assert amount(answer.refunded) == 0
    assert (bucket.remaining, bucket.held) == (10, 0)


async def test_reversing_a_pending_outcome_clears_its_pending_charge_and_bills_nothing(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Nothing pending, nothing counted or charged this month, nothing refunded."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert answer.state == pb.OUTCOME_STATE_RELEASED
    assert (answer.units_returned, amount(answer.refunded)) == (0, 0)
    assert (balance.pending_outcomes, amount(balance.pending_charge)) == (0, 0)
    assert (balance.period_outcomes, amount(balance.period_charged)) == (0, 0)


async def test_reversing_a_released_outcome_again_is_a_replay(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The same reversal again answers with the first result, marked replayed, and writes nothing."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))
    first = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    again = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    bucket = await bucket_of(stub, customer, "annual")
    assert again.replayed
    assert (again.ledger_sequence, again.state, again.units_returned) == (
        first.ledger_sequence,
        pb.OUTCOME_STATE_RELEASED,
        1,
    )
    assert bucket.remaining == 10


async def test_a_pending_outcome_released_after_its_bucket_expired_returns_nothing_drawable(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """The held unit goes back and expires with its bucket: no remaining, no hold."""
    customer = await customer_on_rate_card(stub)
    now = datetime.now(UTC)
    await create_bucket(stub, customer, "short", 5, valid_until=now + timedelta(hours=1))
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))
    clock.advance(timedelta(hours=2))
    expired = await entry_once_written(stub, customer, pb.LEDGER_ENTRY_KIND_BUCKET_EXPIRED)

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    bucket = await bucket_of(stub, customer, "short")
    assert expired.units == 4
    assert answer.state == pb.OUTCOME_STATE_RELEASED
    assert (bucket.status, bucket.remaining, bucket.held) == (pb.BUCKET_STATUS_EXPIRED, 0, 0)


# ---- settling by itself ---------------------------------------------------------------


async def test_a_pending_outcome_settles_by_itself_once_its_window_has_passed(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """With a 1 s settlement window the sweep settles it and the month bills it."""
    customer = await customer_on_rate_card(
        stub, price="0.99", settlement_window=timedelta(seconds=1)
    )
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    balance = await balance_once_settled(stub, customer)

    assert balance.pending_outcomes == 0
    assert balance.period_outcomes == 1
    assert amount(balance.period_charged) == Decimal("0.99")


async def test_a_pending_outcome_settles_once_the_default_24_hours_have_passed(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """Moving the server's clock past 24 h settles it; its held unit becomes drawn."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))

    clock.advance(timedelta(hours=24, minutes=1))
    balance = await balance_once_settled(stub, customer)

    assert balance.pending_outcomes == 0
    assert balance.period_outcomes == 1
    assert [(b.remaining, b.held) for b in balance.buckets] == [(9, 0)]


async def test_a_pending_outcome_recorded_after_its_window_settles_in_the_current_month(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Recorded 40 days late, it settles now: this month bills it, not a month already closed."""
    customer = await customer_on_rate_card(stub, price="0.99")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING, occurred_at=long_ago))

    balance = await balance_once_settled(stub, customer)

    assert balance.pending_outcomes == 0
    assert balance.period_outcomes == 1
    assert amount(balance.period_charged) == Decimal("0.99")


async def test_a_pending_outcome_stays_pending_inside_its_window(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """23 h into its 24 h window it is still pending, while an older one has settled."""
    customer = await customer_on_rate_card(stub)
    older = datetime.now(UTC) - timedelta(hours=2)
    await stub.RecordOutcome(record(customer, "conv-old", state=PENDING, occurred_at=older))
    await stub.RecordOutcome(record(customer, "conv-new", state=PENDING))
    clock.advance(timedelta(hours=23))

    settled = await entry_once_written(stub, customer, pb.LEDGER_ENTRY_KIND_OUTCOME_RATED)

    balance = await balance_of(stub, customer)
    assert settled.outcome_id == "conv-old"
    assert balance.pending_outcomes == 1
    assert balance.period_outcomes == 1


async def test_reversing_a_pending_outcome_whose_window_has_passed_reverses_it_as_settled(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """An outcome whose window has passed counts as settled: the reversal refunds its charge."""
    customer = await customer_on_rate_card(stub, price="0.99")
    past = datetime.now(UTC) - timedelta(hours=25)
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING, occurred_at=past))

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert answer.state == pb.OUTCOME_STATE_REVERSED
    assert amount(answer.refunded) == Decimal("0.99")
    assert (balance.pending_outcomes, amount(balance.pending_charge)) == (0, 0)


# ---- reversing a settled outcome ----------------------------------------------------------


async def test_reversing_a_settled_outcome_next_month_refunds_its_charge_in_that_month(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """40 days later the refund is the charge, and the new month's charges go negative by it."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await stub.RecordOutcome(record(customer, "conv-1"))
    clock.advance(timedelta(days=40))

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert answer.state == pb.OUTCOME_STATE_REVERSED
    assert (answer.units_returned, amount(answer.refunded)) == (0, Decimal("0.99"))
    assert balance.period_outcomes == -1
    assert amount(balance.period_charged) == Decimal("-0.99")


async def test_reversing_a_settled_outcome_next_month_gives_its_unit_back_to_its_bucket(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """40 days later the bucket gets its unit back; nothing is refunded; the month counts -1."""
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1"))
    clock.advance(timedelta(days=40))

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert answer.state == pb.OUTCOME_STATE_REVERSED
    assert (answer.units_returned, amount(answer.refunded)) == (1, 0)
    assert [(b.remaining, b.held) for b in balance.buckets] == [(10, 0)]
    assert (balance.period_outcomes, amount(balance.period_charged)) == (-1, 0)


async def test_reversing_a_confirmed_pending_outcome_refunds_its_charge(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Once confirmed, a reversal is a refund of its charge, and the month nets to zero."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await stub.RecordOutcome(record(customer, "conv-1", state=PENDING))
    await stub.ConfirmOutcome(confirm(customer, "conv-1"))

    answer = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert answer.state == pb.OUTCOME_STATE_REVERSED
    assert amount(answer.refunded) == Decimal("0.99")
    assert (balance.period_outcomes, amount(balance.period_charged)) == (0, 0)


async def test_reversing_a_settled_outcome_twice_refunds_once(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The second reversal is a replay of the first; the month is refunded once."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await stub.RecordOutcome(record(customer, "conv-1"))
    await stub.RecordOutcome(record(customer, "conv-2"))
    first = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    again = await stub.ReverseOutcome(reverse(customer, "conv-1"))

    balance = await balance_of(stub, customer)
    assert again.replayed
    assert (again.ledger_sequence, amount(again.refunded)) == (
        first.ledger_sequence,
        Decimal("0.99"),
    )
    assert (balance.period_outcomes, amount(balance.period_charged)) == (1, Decimal("0.99"))


async def test_reversing_with_another_reason_is_an_idempotency_key_reuse(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """The reason is part of the payload: ALREADY_EXISTS, IDEMPOTENCY_KEY_REUSED."""
    customer = await customer_on_rate_card(stub)
    await stub.RecordOutcome(record(customer, "conv-1"))
    await stub.ReverseOutcome(reverse(customer, "conv-1"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ReverseOutcome(
            pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="conv-1", reason="other")
        )

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(raised.value) == "IDEMPOTENCY_KEY_REUSED"
