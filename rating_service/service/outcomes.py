"""Outcomes: record, confirm, reverse, and settle those whose window has passed.

Each handler is a function of a write unit of work, a command and ``now``;
it loads what it needs through the repositories, asks the domain what to do,
and appends the result. Refusals (``DomainError``) may come at any point:
the writer takes back whatever the handler staged before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from rating_service.domain import postings as entries
from rating_service.domain.commands import (
    ConfirmOutcome,
    OutcomeState,
    RecordOutcome,
    ReverseOutcome,
)
from rating_service.domain.errors import OutcomeNotFound, OutcomeReversed
from rating_service.domain.money import Money
from rating_service.domain.outcome_record import OutcomeEnd, StoredOutcome
from rating_service.domain.ratecard import require_version
from rating_service.domain.rating import rate_outcome
from rating_service.domain.results import OutcomeConfirmed, OutcomeRecorded, OutcomeUndone
from rating_service.domain.settlement import settlement_time
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.session import WriteSession
from rating_service.service import spend
from rating_service.service.idempotency import require_same_payload

_ATTRIBUTES = json.JSONEncoder(sort_keys=True)
"""How attributes are stored (``json.dumps(..., sort_keys=True)``), built once, not per call."""


@dataclass(frozen=True)
class Prepared:
    """What a recorded outcome needs of its command alone: its fingerprint and its attributes
    as stored. Made before the job queues (``prepare``), while the writer commits the batch
    before, so the writer's thread, which every outcome waits for, does not."""

    fingerprint: str
    attributes: str


def prepare(cmd: RecordOutcome) -> Prepared:
    return Prepared(cmd.fingerprint(), _ATTRIBUTES.encode(dict(cmd.attributes)))


def record(
    uow: WriteSession, cmd: RecordOutcome, now: datetime, prepared: Prepared | None = None
) -> OutcomeRecorded:
    if prepared is None:
        prepared = prepare(cmd)
    head = uow.customers.head(cmd.customer_id)
    fingerprint = prepared.fingerprint
    existing = uow.outcomes.get(cmd.customer_id, cmd.outcome_id)
    if existing is not None:
        require_same_payload(existing.fingerprint, fingerprint, "outcome_id", cmd.outcome_id)
        return existing.as_recorded(replayed=True)
    at = cmd.occurred_at or now
    version = require_version(uow.rate_cards.in_force(head.rate_card_id, at), head.rate_card_id, at)
    found = uow.buckets.unexpired(head.customer_id, cmd.outcome_type, at)
    rating = rate_outcome(version, found, cmd.outcome_type, at)
    spend.require_within_hard_limit(uow, head, rating.charged, now)
    take = entries.OutcomeTake(
        cmd.outcome_id, cmd.outcome_type, rating.bucket_id, rating.charged, rating.unit_price
    )
    pending = cmd.state is OutcomeState.PENDING
    if pending:
        tx = entries.outcome_held(take, at)
    else:
        tx = entries.outcome_rated(take, max(at, now), was_pending=False)
    sequence = uow.append(head, tx, now)
    if not pending:
        spend.note_charge(uow, head, tx, sequence, now)
    state = OutcomeState.PENDING if pending else OutcomeState.SETTLED
    outcome = StoredOutcome(
        customer_id=cmd.customer_id,
        outcome_id=cmd.outcome_id,
        fingerprint=fingerprint,
        outcome_type=cmd.outcome_type,
        state=state,
        recorded_state=state,
        occurred_at=at,
        recorded_at=now,
        settles_at=at + rating.settlement_window if pending else None,
        bucket_id=rating.bucket_id,
        unit_price=rating.unit_price,
        charged=rating.charged,
        rate_card_version=rating.rate_card_version,
        rate_card_id=head.rate_card_id,
        attributes=prepared.attributes,
        record_sequence=sequence,
        settle_sequence=None if pending else sequence,
    )
    uow.outcomes.add(outcome)
    return outcome.as_recorded(replayed=False)


def confirm(uow: WriteSession, cmd: ConfirmOutcome, now: datetime) -> OutcomeConfirmed:
    head = uow.customers.head(cmd.customer_id)
    outcome = _require(uow, cmd.customer_id, cmd.outcome_id)
    if outcome.ended:
        raise OutcomeReversed(
            f"outcome {cmd.outcome_id!r} was reversed and cannot be confirmed",
            outcome_id=cmd.outcome_id,
        )
    if outcome.state is OutcomeState.SETTLED:
        assert outcome.settle_sequence is not None
        return OutcomeConfirmed(outcome.settle_sequence, replayed=True)
    at = settlement_time(outcome.due, outcome.recorded_at, confirmed_at=now)
    settled = _settle(uow, head, outcome, at, now)
    assert settled.settle_sequence is not None
    return OutcomeConfirmed(settled.settle_sequence, replayed=False)


def reverse(uow: WriteSession, cmd: ReverseOutcome, now: datetime) -> OutcomeUndone:
    head = uow.customers.head(cmd.customer_id)
    outcome = _require(uow, cmd.customer_id, cmd.outcome_id)
    fingerprint = cmd.fingerprint()
    if outcome.ended:
        assert outcome.end is not None
        require_same_payload(outcome.end.fingerprint, fingerprint, "outcome_id", cmd.outcome_id)
        return outcome.as_undone()
    if outcome.state is OutcomeState.PENDING and outcome.due <= now:
        # It settled by itself before this reversal; the sweep had not written it yet.
        outcome = _settle(
            uow, head, outcome, settlement_time(outcome.due, outcome.recorded_at), now
        )
    take = outcome.take
    expired = bool(take.bucket_id) and uow.buckets.has_expired(
        head.customer_id, take.bucket_id or ""
    )
    if outcome.state is OutcomeState.PENDING:
        tx = entries.outcome_released(take, now, bucket_expired=expired)
        state, refunded = OutcomeState.RELEASED, Money.zero(take.charge.currency)
    else:
        tx = entries.outcome_reversed(take, now, bucket_expired=expired)
        state, refunded = OutcomeState.REVERSED, take.charge
    sequence = uow.append(head, tx, now)
    units_returned = 1 if take.bucket_id else 0
    end = OutcomeEnd(sequence, fingerprint, units_returned, refunded)
    uow.outcomes.save_end(outcome.finished(state, end))
    return OutcomeUndone(sequence, state, units_returned, refunded, replayed=False)


def settle_due(uow: WriteSession, now: datetime, limit: int) -> int:
    """Settle pending outcomes whose window has passed, at the end of their window."""
    due = uow.outcomes.due(now, limit)
    uow.lock_customers(customer_id for customer_id, _ in due)
    settled = 0
    for customer_id, outcome_id in due:
        head = uow.customers.head(customer_id)
        # Read again under the customer's lock: another replica's sweep may have
        # settled it since the query above (settling twice would charge twice).
        current = uow.outcomes.get(customer_id, outcome_id)
        if current is None or current.state is not OutcomeState.PENDING:
            continue
        _settle(uow, head, current, settlement_time(current.due, current.recorded_at), now)
        settled += 1
    return settled


def _settle(
    uow: WriteSession, head: CustomerHead, outcome: StoredOutcome, at: datetime, now: datetime
) -> StoredOutcome:
    tx = entries.outcome_rated(outcome.take, at, was_pending=True)
    sequence = uow.append(head, tx, now)
    settled = outcome.settled(sequence)
    uow.outcomes.save_settled(settled)
    spend.note_charge(uow, head, tx, sequence, now)
    return settled


def _require(uow: WriteSession, customer_id: str, outcome_id: str) -> StoredOutcome:
    outcome = uow.outcomes.get(customer_id, outcome_id)
    if outcome is None:
        raise OutcomeNotFound(
            f"outcome {outcome_id!r} was never recorded for customer {customer_id!r}",
            outcome_id=outcome_id,
        )
    return outcome
