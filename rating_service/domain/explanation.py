"""Why an outcome was charged what it was: its history, its bucket, what Stripe was told (pure).

Everything here is derived from what the ledger already keeps: the outcome's
row (what it took and at what price), its ledger entries (when each step
happened and in which month it counts), the bucket, and the reporter's
outbox (the meter events whose ledger range holds a settlement or reversal).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from rating_service.domain.billing import month_start
from rating_service.domain.buckets import Bucket
from rating_service.domain.commands import OutcomeState
from rating_service.domain.money import Money
from rating_service.domain.outcome_record import StoredOutcome
from rating_service.domain.postings import EntryKind
from rating_service.domain.results import Entry


class Step(enum.Enum):
    RECORDED = "RECORDED"
    SETTLED = "SETTLED"
    RELEASED = "RELEASED"
    REVERSED = "REVERSED"


class BucketUse(enum.Enum):
    HELD = "HELD"
    DRAWN = "DRAWN"
    RETURNED = "RETURNED"


class MeterEventState(enum.Enum):
    PLANNED = "PLANNED"
    SENT = "SENT"
    CANCELLED = "CANCELLED"
    """Sent, then cancelled in Stripe (a reversal within a day); a replacement event with the
    same ledger range carries what remains."""


@dataclass(frozen=True)
class HistoryStep:
    step: Step
    at: datetime
    recorded_at: datetime
    sequence: int
    period_start: datetime | None
    """The month the step counts in; None for a pending record or a release."""


@dataclass(frozen=True)
class MeterEvent:
    """A planned meter event as the reporter's outbox holds it."""

    identifier: str
    event_name: str
    value: int
    window_start: datetime
    first_sequence: int
    last_sequence: int
    sent_at: datetime | None
    cancelled_at: datetime | None = None

    @property
    def state(self) -> MeterEventState:
        if self.cancelled_at is not None:
            return MeterEventState.CANCELLED
        return MeterEventState.PLANNED if self.sent_at is None else MeterEventState.SENT


@dataclass(frozen=True)
class CreditGrant:
    bucket_id: str
    grant_id: str
    """Empty while the reporter has not created it."""
    amount: Money


@dataclass(frozen=True)
class Explanation:
    outcome: StoredOutcome
    attributes: dict[str, str]
    bucket: Bucket | None
    bucket_use: BucketUse | None
    history: tuple[HistoryStep, ...]
    entries: tuple[Entry, ...]
    stripe_customer_id: str
    meter_events: tuple[MeterEvent, ...]
    credit_grants: tuple[CreditGrant, ...]


def outcome_sequences(outcome: StoredOutcome) -> list[int]:
    """The ledger sequences of the outcome's transactions, in order, each once."""
    found = [outcome.record_sequence, outcome.settle_sequence]
    if outcome.end is not None:
        found.append(outcome.end.sequence)
    return sorted({s for s in found if s is not None})


def usage_sequences(outcome: StoredOutcome) -> list[int]:
    """The sequences that count as usage (a settlement, a reversal): what meter events carry."""
    found = [] if outcome.settle_sequence is None else [outcome.settle_sequence]
    if outcome.state is OutcomeState.REVERSED and outcome.end is not None:
        found.append(outcome.end.sequence)
    return found


_STEPS = {
    EntryKind.OUTCOME_HELD: (Step.RECORDED,),
    EntryKind.OUTCOME_RELEASED: (Step.RELEASED,),
    EntryKind.OUTCOME_REVERSED: (Step.REVERSED,),
}


def history_of(outcome: StoredOutcome, entries: list[Entry]) -> tuple[HistoryStep, ...]:
    """The outcome's steps from its entries; one recorded as confirmed records and settles
    in the same transaction (two steps, one sequence)."""
    steps: list[HistoryStep] = []
    for entry in sorted(entries, key=lambda e: e.sequence):
        if entry.kind is EntryKind.OUTCOME_RATED:
            kinds: tuple[Step, ...] = (Step.SETTLED,)
            if entry.sequence == outcome.record_sequence:
                kinds = (Step.RECORDED, Step.SETTLED)
        else:
            kinds = _STEPS.get(entry.kind, ())
        for step in kinds:
            counts = step in (Step.SETTLED, Step.REVERSED)
            at = outcome.occurred_at if step is Step.RECORDED else entry.occurred_at
            steps.append(
                HistoryStep(
                    step,
                    at,
                    entry.recorded_at,
                    entry.sequence,
                    month_start(entry.occurred_at) if counts else None,
                )
            )
    return tuple(steps)


def bucket_use(outcome: StoredOutcome) -> BucketUse | None:
    """How the outcome uses its bucket now (None when no bucket covered it)."""
    if not outcome.bucket_id:
        return None
    if outcome.ended:
        return BucketUse.RETURNED
    return BucketUse.HELD if outcome.state is OutcomeState.PENDING else BucketUse.DRAWN


def carrying_events(
    candidates: list[MeterEvent], sequences: list[int], outcome_type: str
) -> tuple[MeterEvent, ...]:
    """Of the events whose range holds one of ``sequences``, those of the outcome's meter
    (a cancelled event and its replacement share a range: both are listed).

    Ranges of different meters may interleave; the meter of an outcome type is
    its own name unless configured otherwise, so events named after the type
    win when several meters' ranges hold the same sequence.
    """
    chosen: list[MeterEvent] = []
    for sequence in sequences:
        holding = [e for e in candidates if e.first_sequence <= sequence <= e.last_sequence]
        names = [e.event_name for e in holding]
        name = outcome_type if outcome_type in names else (names[0] if names else "")
        chosen += [e for e in holding if e.event_name == name]
    unique = {e.identifier: e for e in chosen}
    return tuple(sorted(unique.values(), key=lambda e: (e.first_sequence, e.identifier)))
