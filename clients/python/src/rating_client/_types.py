"""Plain Python values the client takes and returns instead of protobuf messages.

Money is a ``Decimal`` with its currency, times are timezone-aware UTC
``datetime``s, durations are ``timedelta``s and enums are their short names
(``"PENDING"`` for ``OUTCOME_STATE_PENDING``). Results are frozen so that a
result handed around cannot be changed by whoever holds it; their sequences
are tuples for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

__all__ = [
    "Alert",
    "Balance",
    "Bucket",
    "BucketLine",
    "BucketSource",
    "BucketVoid",
    "Confirmation",
    "Consumption",
    "Customer",
    "HistoryStep",
    "InvoiceLine",
    "InvoicePreview",
    "LedgerEntry",
    "MeterEventReport",
    "Money",
    "NewOutcome",
    "OutcomeExplanation",
    "OutcomeRecorded",
    "Posting",
    "Price",
    "Quote",
    "RateCardVersion",
    "RecordState",
    "Reversal",
    "SimulatedCustomer",
    "Simulation",
    "SpendControls",
]

RecordState = Literal["CONFIRMED", "PENDING"]
"""The states an outcome may be recorded in."""

BucketSource = Literal["PURCHASE", "REALLOCATION", "PROMOTIONAL"]
"""Where a bucket's units came from."""


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of money in an ISO 4217 currency."""

    amount: Decimal
    currency_code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOutcome:
    """One outcome to record, as an item of ``RatingClient.record_outcomes``."""

    customer_id: str
    outcome_id: str
    """The idempotency key, unique per customer forever."""
    outcome_type: str
    occurred_at: datetime | None = None
    """Timezone-aware; None means the server's now."""
    state: RecordState | None = None
    """None leaves it to the server, which records it as confirmed."""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRecorded:
    """How an outcome was rated and recorded."""

    ledger_sequence: int
    unit_price: Money
    units_from_buckets: int
    """1 when a bucket covers or holds the outcome, else 0."""
    charged: Money
    """Zero when a bucket covered it; for a pending outcome, what it will cost."""
    rate_card_version: datetime
    state: str
    """``"PENDING"`` or ``"SETTLED"``."""
    replayed: bool
    bucket_id: str | None
    settles_at: datetime | None
    """When a pending outcome settles by itself; None once recorded as confirmed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirmation:
    """A pending outcome settled by ``confirm_outcome``."""

    ledger_sequence: int
    state: str
    replayed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal:
    """An outcome undone by ``reverse_outcome``."""

    ledger_sequence: int
    state: str
    """``"RELEASED"`` (it was pending) or ``"REVERSED"`` (it was settled)."""
    units_returned: int
    refunded: Money
    replayed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketLine:
    """The units one bucket gives to a quote or a draw."""

    bucket_id: str
    units: int
    remaining: int
    """Units left in the bucket after the draw, held units excluded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """What more outcomes would cost; nothing was written."""

    unit_price: Money
    units_covered: int
    units_billable: int
    total: Money
    rate_card_version: datetime
    lines: tuple[BucketLine, ...]
    limit_remaining: Money | None = None
    """What this month may still be charged before the hard limit; None without a limit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Consumption:
    """Units drawn from buckets by ``consume_bucket``."""

    consumed: int
    lines: tuple[BucketLine, ...]
    remaining_total: int
    ledger_sequence: int
    replayed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """A prepaid bucket of units."""

    bucket_id: str
    outcome_type: str
    quantity: int
    remaining: int
    """Units not yet drawn, held units excluded."""
    held: int
    """Units held by pending outcomes."""
    valid_from: datetime
    valid_until: datetime
    unit_price: Money
    source: str
    status: str
    """``"ACTIVE"``, ``"SCHEDULED"``, ``"EXPIRED"``, ``"EXHAUSTED"`` or ``"VOIDED"``."""
    priority: int
    replayed: bool
    ledger_sequence: int
    projected_exhaustion: datetime | None = None
    """From ``get_balance``: when it would run out at the last 28 days' pace (None: not
    before it expires)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """A customer's buckets and the usage of the current calendar month (UTC)."""

    buckets: tuple[Bucket, ...]
    period_start: datetime
    period_outcomes: int
    period_charged: Money
    pending_outcomes: int
    pending_charge: Money
    ledger_sequence: int
    projected_period_outcomes: int
    """``period_outcomes`` at the month's end at the pace of the last 28 days."""
    projected_period_charge: Money
    """``period_charged`` likewise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting:
    """One leg of a ledger transaction; the legs sum to zero per asset."""

    account: str
    asset: str
    """``unit:<outcome_type>`` for units, or a currency code for money."""
    amount: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """One ledger transaction; ids that do not apply to its kind are None."""

    sequence: int
    transaction_id: str
    kind: str
    """``"OUTCOME_RATED"``, ``"BUCKET_CREATED"``, ... (LedgerEntryKind without prefix)."""
    customer_id: str
    outcome_id: str | None
    request_id: str | None
    bucket_id: str | None
    outcome_type: str | None
    units: int
    amount: Money
    occurred_at: datetime
    recorded_at: datetime
    postings: tuple[Posting, ...]
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Customer:
    """A customer as stored by ``put_customer``."""

    customer_id: str
    stripe_customer_id: str | None
    rate_card_id: str
    create_time: datetime
    update_time: datetime
    replayed: bool
    """True when the call changed nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """The price of one outcome type in a rate-card version."""

    outcome_type: str
    unit_price: Money
    settlement_window: timedelta
    """How long a pending outcome of this type waits before it settles."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateCardVersion:
    """A version of a rate card as stored by ``put_rate_card``."""

    rate_card_id: str
    effective_from: datetime
    currency_code: str
    prices: tuple[Price, ...]
    """Ordered by outcome type."""
    replayed: bool
    """True when this version already existed with the same content."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketVoid:
    """A bucket ended by ``void_bucket``: its undrawn units expired."""

    bucket: Bucket
    units_expired: int
    ledger_sequence: int
    void_time: datetime
    replayed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendControls:
    """A customer's monthly alert thresholds and hard limit, as ``put_spend_controls`` set them."""

    customer_id: str
    alert_thresholds: tuple[Money, ...]
    """Increasing."""
    hard_limit: Money | None
    update_time: datetime
    replayed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A customer's charges of a month reached one of its alert thresholds."""

    alert_id: int
    """1, 2, 3, ... across the ledger with no gap: resume a watch after the last one seen."""
    customer_id: str
    period_start: datetime
    threshold: Money
    period_charged: Money
    crossed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryStep:
    """One step of an outcome's life."""

    step: str
    """``"RECORDED"``, ``"SETTLED"``, ``"RELEASED"`` or ``"REVERSED"``."""
    at: datetime
    recorded_at: datetime
    ledger_sequence: int
    period_start: datetime | None
    """The month the step counts in (settlements and reversals only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterEventReport:
    """An aggregated meter event that carried an outcome's usage to Stripe."""

    identifier: str
    event_name: str
    value: int
    window_start: datetime
    first_sequence: int
    last_sequence: int
    state: str
    """``"PLANNED"``, ``"SENT"`` or ``"CANCELLED"``."""
    sent_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeExplanation:
    """Everything that decided one outcome's charge (``explain_outcome``)."""

    customer_id: str
    outcome_id: str
    outcome_type: str
    occurred_at: datetime
    attributes: Mapping[str, str]
    state: str
    rate_card_id: str
    rate_card_version: datetime
    unit_price: Money
    charged: Money
    bucket: Bucket | None
    bucket_use: str | None
    """``"HELD"``, ``"DRAWN"`` or ``"RETURNED"``; None without a bucket."""
    history: tuple[HistoryStep, ...]
    entries: tuple[LedgerEntry, ...]
    stripe_customer_id: str
    meter_events: tuple[MeterEventReport, ...]
    credit_grant_ids: Mapping[str, str]
    """Bucket id -> Stripe credit grant id ("" while not yet created)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceLine:
    """The outcomes of one type at one unit price in a month."""

    outcome_type: str
    unit_price: Money
    settled: int
    reversed: int
    net: int
    covered: int
    billable: int
    amount: Money


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePreview:
    """One customer's bill for one calendar month (``preview_invoice``)."""

    customer_id: str
    period_start: datetime
    period_end: datetime
    lines: tuple[InvoiceLine, ...]
    credits: Money
    total: Money
    pending_outcomes: int
    pending_charge: Money
    meters: Mapping[str, tuple[int, int, int, int]]
    """Meter event name -> (planned, sent, debt, credited) reported to Stripe for the month."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedCustomer:
    customer_id: str
    billable_outcomes: int
    actual: Money
    simulated: Money
    difference: Money


@dataclass(frozen=True, slots=True, kw_only=True)
class Simulation:
    """A month re-priced under draft prices (``simulate_rate_card``)."""

    period_start: datetime
    customers: tuple[SimulatedCustomer, ...]
    actual_total: Money
    simulated_total: Money
    difference_total: Money
