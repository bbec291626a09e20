"""What the mutating calls answer, as plain values the API layer translates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rating_service.domain.buckets import Bucket, Draw
from rating_service.domain.commands import OutcomeState
from rating_service.domain.money import Money
from rating_service.domain.postings import EntryKind, Posting
from rating_service.domain.ratecard import RateCardVersion
from rating_service.domain.spend import SpendControls


@dataclass(frozen=True)
class OutcomeRecorded:
    ledger_sequence: int
    unit_price: Money
    bucket_id: str | None
    charged: Money
    rate_card_version: datetime
    state: OutcomeState
    settles_at: datetime | None
    replayed: bool


@dataclass(frozen=True)
class OutcomeConfirmed:
    ledger_sequence: int
    replayed: bool


@dataclass(frozen=True)
class OutcomeUndone:
    ledger_sequence: int
    state: OutcomeState
    units_returned: int
    refunded: Money
    replayed: bool


@dataclass(frozen=True)
class Consumed:
    consumed: int
    lines: tuple[Draw, ...]
    remaining_total: int
    ledger_sequence: int
    replayed: bool


@dataclass(frozen=True)
class BucketCreated:
    bucket: Bucket
    ledger_sequence: int
    replayed: bool


@dataclass(frozen=True)
class BucketVoided:
    bucket: Bucket
    units_expired: int
    ledger_sequence: int
    voided_at: datetime
    replayed: bool


@dataclass(frozen=True)
class SpendControlsPut:
    customer_id: str
    controls: SpendControls
    replayed: bool


@dataclass(frozen=True)
class Customer:
    customer_id: str
    stripe_customer_id: str
    rate_card_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CustomerPut:
    customer: Customer
    replayed: bool


@dataclass(frozen=True)
class RateCardPut:
    version: RateCardVersion
    replayed: bool


@dataclass(frozen=True)
class Balance:
    buckets: tuple[Bucket, ...]
    period_start: datetime
    period_outcomes: int
    period_charged: Money
    pending_outcomes: int
    pending_charge: Money
    ledger_sequence: int
    projected_outcomes: int
    """``period_outcomes`` at the month's end, at the pace of the last 28 days."""
    projected_charge: Money
    """``period_charged`` likewise."""
    exhaustion: Mapping[str, datetime]
    """By bucket id: when it would run out at that pace (absent: not before it expires)."""


@dataclass(frozen=True)
class Entry:
    """One ledger transaction as stored, with its place in the customer's chain."""

    customer_id: str
    sequence: int
    transaction_id: str
    kind: EntryKind
    outcome_type: str
    outcome_id: str
    request_id: str
    bucket_id: str
    units: int
    amount: Money
    occurred_at: datetime
    recorded_at: datetime
    postings: tuple[Posting, ...]
    prev_hash: str
    hash: str
