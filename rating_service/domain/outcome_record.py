"""An outcome as the ledger keeps it: what it took, where it stands, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from rating_service.domain.commands import OutcomeState
from rating_service.domain.money import Money
from rating_service.domain.postings import OutcomeTake
from rating_service.domain.results import OutcomeRecorded, OutcomeUndone


@dataclass(frozen=True)
class OutcomeEnd:
    """How a pending outcome was released, or a settled one reversed (kept for replays)."""

    sequence: int
    fingerprint: str
    units_returned: int
    refunded: Money


@dataclass(frozen=True)
class StoredOutcome:
    customer_id: str
    outcome_id: str
    fingerprint: str
    """Of the request that recorded it: a retry with another payload is refused."""
    outcome_type: str
    state: OutcomeState
    recorded_state: OutcomeState
    """PENDING or SETTLED: what the recording call answered, so a replay answers the same."""
    occurred_at: datetime
    recorded_at: datetime
    settles_at: datetime | None
    """When a pending outcome's settlement window ends."""
    bucket_id: str | None
    unit_price: Money
    charged: Money
    rate_card_version: datetime
    rate_card_id: str
    """The rate card that priced it ("" for outcomes recorded before the ledger kept it whose
    customer had no rate card when it was migrated)."""
    attributes: str
    """The caller's evidence, as stored (canonical JSON)."""
    record_sequence: int
    settle_sequence: int | None = None
    end: OutcomeEnd | None = None

    @property
    def take(self) -> OutcomeTake:
        """What it took from the customer's books: a bucket unit or a charge."""
        return OutcomeTake(
            self.outcome_id, self.outcome_type, self.bucket_id, self.charged, self.unit_price
        )

    @property
    def ended(self) -> bool:
        """Released (while pending) or reversed (once settled): it can no longer settle."""
        return self.state in (OutcomeState.RELEASED, OutcomeState.REVERSED)

    @property
    def due(self) -> datetime:
        """When it settles by itself (pending outcomes only)."""
        assert self.settles_at is not None, "only a pending outcome falls due"
        return self.settles_at

    def settled(self, sequence: int) -> StoredOutcome:
        return replace(self, state=OutcomeState.SETTLED, settle_sequence=sequence)

    def finished(self, state: OutcomeState, end: OutcomeEnd) -> StoredOutcome:
        return replace(self, state=state, end=end)

    def as_recorded(self, *, replayed: bool) -> OutcomeRecorded:
        """The answer of the call that recorded it."""
        return OutcomeRecorded(
            ledger_sequence=self.record_sequence,
            unit_price=self.unit_price,
            bucket_id=self.bucket_id,
            charged=self.charged,
            rate_card_version=self.rate_card_version,
            state=self.recorded_state,
            settles_at=self.settles_at,
            replayed=replayed,
        )

    def as_undone(self) -> OutcomeUndone:
        """The answer of the call that ended it, for a replay of that call."""
        assert self.end is not None, "only an ended outcome has an end to replay"
        return OutcomeUndone(
            ledger_sequence=self.end.sequence,
            state=self.state,
            units_returned=self.end.units_returned,
            refunded=self.end.refunded,
            replayed=True,
        )
