"""Outcome calls in and out: RecordOutcome(s), ConfirmOutcome, ReverseOutcome.

What cannot become a domain value raises InvalidArgument here (see ``servicer``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rating_client.v1 import rating_pb2 as pb

from rating_service.api.errors import to_status
from rating_service.api.wire import (
    money_out,
    set_money,
    set_time,
    stamp_in,
)
from rating_service.domain import results
from rating_service.domain.commands import (
    ConfirmOutcome,
    OutcomeState,
    RecordOutcome,
    ReverseOutcome,
)
from rating_service.domain.errors import InvalidArgument

_STATES_IN = {
    pb.OUTCOME_STATE_UNSPECIFIED: OutcomeState.CONFIRMED,
    pb.OUTCOME_STATE_CONFIRMED: OutcomeState.CONFIRMED,
    pb.OUTCOME_STATE_PENDING: OutcomeState.PENDING,
    # Not input states: RecordOutcome.validate refuses them.
    pb.OUTCOME_STATE_SETTLED: OutcomeState.SETTLED,
    pb.OUTCOME_STATE_RELEASED: OutcomeState.RELEASED,
    pb.OUTCOME_STATE_REVERSED: OutcomeState.REVERSED,
}
STATES_OUT = {
    OutcomeState.PENDING: pb.OUTCOME_STATE_PENDING,
    OutcomeState.SETTLED: pb.OUTCOME_STATE_SETTLED,
    OutcomeState.CONFIRMED: pb.OUTCOME_STATE_SETTLED,
    OutcomeState.RELEASED: pb.OUTCOME_STATE_RELEASED,
    OutcomeState.REVERSED: pb.OUTCOME_STATE_REVERSED,
}


def record_outcome_in(request: pb.RecordOutcomeRequest, prefix: str = "") -> RecordOutcome:
    state = _STATES_IN.get(request.state)
    if state is None:  # a number the proto does not define
        raise InvalidArgument.field(
            f"{prefix}state", "must be OUTCOME_STATE_CONFIRMED or OUTCOME_STATE_PENDING"
        )
    return RecordOutcome(
        customer_id=request.customer_id,
        outcome_id=request.outcome_id,
        outcome_type=request.outcome_type,
        occurred_at=stamp_in(request.occurred_at, f"{prefix}occurred_at")
        if request.HasField("occurred_at")
        else None,
        state=state,
        attributes=dict(request.attributes),
    )


def record_outcomes_in(request: pb.RecordOutcomesRequest) -> list[RecordOutcome | InvalidArgument]:
    """Each item as a command, or as the error it could not be read with (``requests[i].``)."""
    items: list[RecordOutcome | InvalidArgument] = []
    for i, item in enumerate(request.requests):
        try:
            items.append(record_outcome_in(item, prefix=f"requests[{i}]."))
        except InvalidArgument as error:
            items.append(error)
    return items


def confirm_outcome_in(request: pb.ConfirmOutcomeRequest) -> ConfirmOutcome:
    return ConfirmOutcome(customer_id=request.customer_id, outcome_id=request.outcome_id)


def reverse_outcome_in(request: pb.ReverseOutcomeRequest) -> ReverseOutcome:
    return ReverseOutcome(
        customer_id=request.customer_id, outcome_id=request.outcome_id, reason=request.reason
    )


def outcome_recorded_out(result: results.OutcomeRecorded) -> pb.RecordOutcomeResponse:
    # Fields are set in place: keyword construction would build each sub-message
    # (Money, Timestamp) on its own and then copy it in, at several times the cost.
    response = pb.RecordOutcomeResponse()
    response.ledger_sequence = result.ledger_sequence
    set_money(response.unit_price, result.unit_price)
    response.units_from_buckets = 1 if result.bucket_id else 0
    set_money(response.charged, result.charged)
    set_time(response.rate_card_version, result.rate_card_version)
    response.state = STATES_OUT[result.state]
    response.replayed = result.replayed
    response.bucket_id = result.bucket_id or ""
    if result.settles_at is not None:
        set_time(response.settles_at, result.settles_at)
    return response


def record_outcomes_out(
    answers: Sequence[results.OutcomeRecorded | Exception],
) -> pb.RecordOutcomesResponse:
    """One result per item, in order: its response, or its error's status."""
    return pb.RecordOutcomesResponse(
        results=[
            pb.RecordOutcomeResult(error=to_status(answer))
            if isinstance(answer, Exception)
            else pb.RecordOutcomeResult(response=outcome_recorded_out(answer))
            for answer in answers
        ]
    )


def outcome_confirmed_out(result: results.OutcomeConfirmed) -> pb.ConfirmOutcomeResponse:
    return pb.ConfirmOutcomeResponse(
        ledger_sequence=result.ledger_sequence,
        state=pb.OUTCOME_STATE_SETTLED,
        replayed=result.replayed,
    )


def outcome_undone_out(result: results.OutcomeUndone) -> pb.ReverseOutcomeResponse:
    return pb.ReverseOutcomeResponse(
        ledger_sequence=result.ledger_sequence,
        state=STATES_OUT[result.state],
        units_returned=result.units_returned,
        refunded=money_out(result.refunded),
        replayed=result.replayed,
    )
