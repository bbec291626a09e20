"""The requests as plain values: validated here, the mutating ones fingerprinted for idempotency.

Every rule about what a request may ask (identifiers, quantities, sizes,
states) is a command's ``validate``; the API only converts. A fingerprint is
a hash of what the caller sent (an absent time stays absent), so a retry that
left ``occurred_at`` unset is the same payload, and a reused key with any
other payload is detected.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rating_service.domain.buckets import BucketSource
from rating_service.domain.errors import FieldViolation, InvalidArgument
from rating_service.domain.identifiers import currency_violation, identifier_violation
from rating_service.domain.money import Money
from rating_service.domain.ratecard import MAX_SETTLEMENT_WINDOW, Price

MAX_FUTURE_SKEW = timedelta(minutes=5)
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_BYTES = 256
MAX_REASON_BYTES = 256
MAX_QUANTITY = 1_000_000_000
MAX_UNIT_PRICE_NANOS = 1_000_000 * 10**9
"""A unit price is at most 1,000,000 of its currency's major units (1e15 nanos).

Every balance is a signed 64-bit integer of nanos (at most 9.22e18, that is
9.22e9 major units), and money balances are kept per month (or for what is
pending). So a month's total fits 9,223 outcomes at the highest price,
576 thousand at IDR 16,000 and 9.3 billion at USD 0.99; a call that would
take a balance past the range is refused with AMOUNT_OUT_OF_RANGE.
"""
MAX_PRICES = 100
DEFAULT_BUCKET_VALIDITY = timedelta(days=365)


class OutcomeState(enum.Enum):
    CONFIRMED = "CONFIRMED"
    PENDING = "PENDING"
    SETTLED = "SETTLED"
    RELEASED = "RELEASED"
    REVERSED = "REVERSED"


def fingerprint(*parts: object) -> str:
    """A stable hash of a payload: same parts, same fingerprint, across restarts."""
    return hashlib.sha256(_CANONICAL.encode(parts).encode()).hexdigest()


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Money):
        return [value.currency, value.nanos]
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_encode)
"""What ``json.dumps`` would build for these options on every call, built once."""


def raise_if_any(*violations: FieldViolation | None) -> None:
    found = [v for v in violations if v is not None]
    if found:
        raise InvalidArgument(*found)


def _bytes_violation(field_name: str, value: str, limit: int) -> FieldViolation | None:
    if len(value.encode()) > limit:
        return FieldViolation(field_name, f"must be at most {limit} bytes")
    return None


def _quantity_violation(field_name: str, value: int, *, minimum: int) -> FieldViolation | None:
    if not minimum <= value <= MAX_QUANTITY:
        return FieldViolation(
            field_name, f"must be between {minimum} and {MAX_QUANTITY}, got {value}"
        )
    return None


def _price_violation(field_name: str, price: Money, *, minimum: int) -> FieldViolation | None:
    if price.nanos < minimum:
        return FieldViolation(
            field_name, "must be a positive amount" if minimum else "must not be negative"
        )
    if price.nanos > MAX_UNIT_PRICE_NANOS:
        return FieldViolation(
            field_name, f"must be at most {MAX_UNIT_PRICE_NANOS // 10**9} {price.currency}"
        )
    return None


def _future_violation(field_name: str, at: datetime | None, now: datetime) -> FieldViolation | None:
    if at is not None and at > now + MAX_FUTURE_SKEW:
        return FieldViolation(field_name, "must not be more than 5 minutes in the future")
    return None


@dataclass(frozen=True)
class RecordOutcome:
    customer_id: str
    outcome_id: str
    outcome_type: str
    occurred_at: datetime | None
    state: OutcomeState
    attributes: Mapping[str, str] = field(default_factory=dict)

    def validate(self, now: datetime, prefix: str = "") -> None:
        attribute_violations: list[FieldViolation | None] = []
        if len(self.attributes) > MAX_ATTRIBUTES:
            attribute_violations.append(
                FieldViolation(f"{prefix}attributes", f"must have at most {MAX_ATTRIBUTES} entries")
            )
        # Only the first over-long attribute is named: each name echoes part of its key,
        # and an error echoes at most 256 bytes of the request, however many are too long.
        for key, value in self.attributes.items():
            over_long = _bytes_violation(
                f"{prefix}attributes[{key[:40]}]", key, MAX_ATTRIBUTE_BYTES
            ) or _bytes_violation(f"{prefix}attributes[{key[:40]}]", value, MAX_ATTRIBUTE_BYTES)
            if over_long is not None:
                attribute_violations.append(over_long)
                break
        raise_if_any(
            identifier_violation(f"{prefix}customer_id", self.customer_id),
            identifier_violation(f"{prefix}outcome_id", self.outcome_id),
            identifier_violation(f"{prefix}outcome_type", self.outcome_type),
            _future_violation(f"{prefix}occurred_at", self.occurred_at, now),
            None
            if self.state in (OutcomeState.CONFIRMED, OutcomeState.PENDING)
            else FieldViolation(
                f"{prefix}state", "must be OUTCOME_STATE_CONFIRMED or OUTCOME_STATE_PENDING"
            ),
            *attribute_violations,
        )

    def fingerprint(self) -> str:
        return fingerprint(
            "record", self.outcome_type, self.occurred_at, self.state, dict(self.attributes)
        )


@dataclass(frozen=True)
class ConfirmOutcome:
    customer_id: str
    outcome_id: str

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("outcome_id", self.outcome_id),
        )


@dataclass(frozen=True)
class ReverseOutcome:
    customer_id: str
    outcome_id: str
    reason: str

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("outcome_id", self.outcome_id),
            _bytes_violation("reason", self.reason, MAX_REASON_BYTES),
        )

    def fingerprint(self) -> str:
        return fingerprint("reverse", self.reason)


@dataclass(frozen=True)
class ConsumeBucket:
    customer_id: str
    request_id: str
    outcome_type: str
    quantity: int
    bucket_id: str
    reason: str

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("request_id", self.request_id),
            identifier_violation("outcome_type", self.outcome_type, required=not self.bucket_id),
            identifier_violation("bucket_id", self.bucket_id, required=False),
            _quantity_violation("quantity", self.quantity, minimum=1),
            _bytes_violation("reason", self.reason, MAX_REASON_BYTES),
        )

    def fingerprint(self) -> str:
        return fingerprint("consume", self.outcome_type, self.quantity, self.bucket_id, self.reason)


@dataclass(frozen=True)
class CreateBucket:
    customer_id: str
    bucket_id: str
    outcome_type: str
    quantity: int | None
    funding: Money | None
    valid_from: datetime | None
    valid_until: datetime | None
    unit_price: Money | None
    source: BucketSource
    priority: int

    def validate(self) -> None:
        size: FieldViolation | None = None
        if self.quantity is None and self.funding is None:
            size = FieldViolation("quantity", "one of quantity or funding is required")
        elif self.quantity is not None:
            size = _quantity_violation("quantity", self.quantity, minimum=1)
        elif self.funding is not None and self.funding.nanos <= 0:
            size = FieldViolation("funding", "must be a positive amount")
        elif self.funding is not None:
            size = currency_violation("funding.currency_code", self.funding.currency)
        window: FieldViolation | None = None
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            window = FieldViolation("valid_until", "must be after valid_from")
        price: FieldViolation | None = None
        if self.unit_price is not None:
            price = currency_violation("unit_price.currency_code", self.unit_price.currency)
            if price is None:
                price = _price_violation("unit_price", self.unit_price, minimum=1)
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("bucket_id", self.bucket_id),
            identifier_violation("outcome_type", self.outcome_type),
            size,
            window,
            price,
        )

    def fingerprint(self) -> str:
        return fingerprint(
            "bucket",
            self.outcome_type,
            self.quantity,
            self.funding,
            self.valid_from,
            self.valid_until,
            self.unit_price,
            self.source,
            self.priority,
        )


@dataclass(frozen=True)
class PutCustomer:
    customer_id: str
    stripe_customer_id: str
    rate_card_id: str

    def validate(self) -> None:
        stripe: FieldViolation | None = None
        if len(self.stripe_customer_id) > 255:
            stripe = FieldViolation("stripe_customer_id", "must be at most 255 characters")
        elif any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in self.stripe_customer_id):
            # No Stripe id has one, and PostgreSQL cannot store a NUL in text (was INTERNAL).
            stripe = FieldViolation("stripe_customer_id", "must not contain control characters")
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("rate_card_id", self.rate_card_id, required=False),
            stripe,
        )


@dataclass(frozen=True)
class PutRateCard:
    rate_card_id: str
    effective_from: datetime | None
    currency: str
    prices: tuple[Price, ...]

    def validate(self) -> None:
        violations: list[FieldViolation | None] = [
            identifier_violation("rate_card_id", self.rate_card_id),
            currency_violation("currency_code", self.currency),
        ]
        if not 1 <= len(self.prices) <= MAX_PRICES:
            violations.append(FieldViolation("prices", f"must have 1 to {MAX_PRICES} entries"))
        seen: set[str] = set()
        for i, price in enumerate(self.prices):
            violations.append(identifier_violation(f"prices[{i}].outcome_type", price.outcome_type))
            if price.outcome_type in seen:
                violations.append(
                    FieldViolation(f"prices[{i}].outcome_type", "each outcome type may appear once")
                )
            seen.add(price.outcome_type)
            price_violation = _price_violation(
                f"prices[{i}].unit_price", price.unit_price, minimum=0
            )
            if price_violation is not None:
                violations.append(price_violation)
            elif price.unit_price.currency != self.currency:
                violations.append(
                    FieldViolation(
                        f"prices[{i}].unit_price.currency_code",
                        f"must be the rate card's currency {self.currency}",
                    )
                )
            if not timedelta(0) <= price.settlement_window <= MAX_SETTLEMENT_WINDOW:
                violations.append(
                    FieldViolation(
                        f"prices[{i}].settlement_window", "must be between 0 and 90 days"
                    )
                )
        raise_if_any(*violations)


@dataclass(frozen=True)
class QuoteCost:
    customer_id: str
    outcome_type: str
    quantity: int
    at: datetime | None

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("outcome_type", self.outcome_type),
            _quantity_violation("quantity", self.quantity, minimum=0),
        )


@dataclass(frozen=True)
class VoidBucket:
    customer_id: str
    bucket_id: str
    reason: str

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("bucket_id", self.bucket_id),
            _bytes_violation("reason", self.reason, MAX_REASON_BYTES),
        )

    def fingerprint(self) -> str:
        return fingerprint("void", self.reason)


MAX_ALERT_THRESHOLDS = 20


@dataclass(frozen=True)
class PutSpendControls:
    customer_id: str
    request_id: str
    alert_thresholds: tuple[Money, ...]
    hard_limit: Money | None

    @property
    def currency(self) -> str | None:
        """The one currency of every amount (None when no amount was given)."""
        amounts = [*self.alert_thresholds, *([self.hard_limit] if self.hard_limit else [])]
        return amounts[0].currency if amounts else None

    def validate(self) -> None:
        violations: list[FieldViolation | None] = [
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("request_id", self.request_id),
        ]
        if len(self.alert_thresholds) > MAX_ALERT_THRESHOLDS:
            violations.append(
                FieldViolation(
                    "alert_thresholds", f"must have at most {MAX_ALERT_THRESHOLDS} entries"
                )
            )
        currency = self.currency
        seen: set[int] = set()
        for i, threshold in enumerate(self.alert_thresholds):
            field_name = f"alert_thresholds[{i}]"
            violations.append(
                currency_violation(f"{field_name}.currency_code", threshold.currency)
                or _same_currency_violation(field_name, threshold, currency)
                or (
                    FieldViolation(field_name, "must be a positive amount")
                    if threshold.nanos <= 0
                    else None
                )
            )
            if threshold.nanos in seen:
                violations.append(FieldViolation(field_name, "each threshold may appear once"))
            seen.add(threshold.nanos)
        if self.hard_limit is not None:
            violations.append(
                currency_violation("hard_limit.currency_code", self.hard_limit.currency)
                or _same_currency_violation("hard_limit", self.hard_limit, currency)
                or (
                    FieldViolation("hard_limit", "must not be negative")
                    if self.hard_limit.nanos < 0
                    else None
                )
            )
        raise_if_any(*violations)

    def fingerprint(self) -> str:
        return fingerprint("spend", list(self.alert_thresholds), self.hard_limit)


def _same_currency_violation(
    field_name: str, amount: Money, currency: str | None
) -> FieldViolation | None:
    if currency is not None and amount.currency != currency:
        return FieldViolation(
            f"{field_name}.currency_code", f"every amount must be in one currency ({currency})"
        )
    return None


@dataclass(frozen=True)
class WatchAlerts:
    """Alerts after ``after_alert_id``, of one customer or (empty ``customer_id``) of all."""

    customer_id: str
    after_alert_id: int

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id, required=False),
            None
            if self.after_alert_id >= 0
            else FieldViolation("after_alert_id", "must not be negative"),
        )


MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_BATCH = 1000


def _page_size_violation(requested: int) -> FieldViolation | None:
    if not 0 <= requested <= MAX_PAGE_SIZE:
        return FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return None


def page_size_of(requested: int) -> int:
    """The page size to serve: 0 means the default; beyond 1,000 is refused."""
    raise_if_any(_page_size_violation(requested))
    return requested or DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class GetBalance:
    """A customer's buckets and this month's usage (a read: nothing to fingerprint)."""

    customer_id: str

    def validate(self) -> None:
        raise_if_any(identifier_violation("customer_id", self.customer_id))


@dataclass(frozen=True)
class ListLedgerEntries:
    """One page of a customer's ledger, in sequence order (a read)."""

    customer_id: str
    page_size: int
    """As asked: 0 means ``DEFAULT_PAGE_SIZE``."""
    after: int
    """The sequence of the last entry already listed (0: list from the first)."""

    @property
    def limit(self) -> int:
        """How many entries a page holds."""
        return page_size_of(self.page_size)

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            _page_size_violation(self.page_size),
        )


def require_batch_size(count: int) -> None:
    """A RecordOutcomes call holds 1 to ``MAX_BATCH`` items (each is validated on its own)."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidArgument.field("requests", f"must hold 1 to {MAX_BATCH} items, got {count}")


@dataclass(frozen=True)
class ExplainOutcome:
    """Everything that decided one outcome's charge (a read)."""

    customer_id: str
    outcome_id: str

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("outcome_id", self.outcome_id),
        )


@dataclass(frozen=True)
class PreviewInvoice:
    """One customer's bill for one calendar month (a read)."""

    customer_id: str
    period_start: datetime | None
    """The month's first instant (UTC); None: the current month."""

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            _month_violation("period_start", self.period_start),
        )


MAX_SIMULATED_CUSTOMERS = 1000


@dataclass(frozen=True)
class SimulateRateCard:
    """A month re-priced under draft prices, for a rate card's customers or a list (a read)."""

    rate_card_id: str | None
    customer_ids: tuple[str, ...] | None
    period_start: datetime | None
    currency: str
    prices: tuple[Price, ...]

    def validate(self) -> None:
        violations: list[FieldViolation | None] = [
            _month_violation("period_start", self.period_start),
            currency_violation("currency_code", self.currency),
        ]
        if (self.rate_card_id is None) == (self.customer_ids is None):
            violations.append(
                FieldViolation("rate_card_id", "exactly one of rate_card_id or customer_list")
            )
        if self.rate_card_id is not None:
            violations.append(identifier_violation("rate_card_id", self.rate_card_id))
        if self.customer_ids is not None:
            field_name = "customer_list.customer_ids"
            if not 1 <= len(self.customer_ids) <= MAX_SIMULATED_CUSTOMERS:
                violations.append(
                    FieldViolation(field_name, f"must hold 1 to {MAX_SIMULATED_CUSTOMERS} ids")
                )
            seen: set[str] = set()
            for i, customer_id in enumerate(self.customer_ids[:MAX_SIMULATED_CUSTOMERS]):
                violations.append(identifier_violation(f"{field_name}[{i}]", customer_id))
                if customer_id in seen:
                    violations.append(FieldViolation(f"{field_name}[{i}]", "appears twice"))
                seen.add(customer_id)
        if not 1 <= len(self.prices) <= MAX_PRICES:
            violations.append(FieldViolation("prices", f"must have 1 to {MAX_PRICES} entries"))
        types: set[str] = set()
        for i, price in enumerate(self.prices[:MAX_PRICES]):
            violations.append(identifier_violation(f"prices[{i}].outcome_type", price.outcome_type))
            if price.outcome_type in types:
                violations.append(
                    FieldViolation(f"prices[{i}].outcome_type", "each outcome type may appear once")
                )
            types.add(price.outcome_type)
            price_violation = _price_violation(
                f"prices[{i}].unit_price", price.unit_price, minimum=0
            )
            if price_violation is not None:
                violations.append(price_violation)
            elif price.unit_price.currency != self.currency:
                violations.append(
                    FieldViolation(
                        f"prices[{i}].unit_price.currency_code",
                        f"must be the draft's currency {self.currency}",
                    )
                )
        raise_if_any(*violations)


def _month_violation(field_name: str, at: datetime | None) -> FieldViolation | None:
    """Why ``at`` cannot open a billing month: it must be the first instant of one (UTC)."""
    if at is None:
        return None
    if (at.day, at.hour, at.minute, at.second, at.microsecond) != (1, 0, 0, 0, 0):
        return FieldViolation(
            field_name, "must be the first instant of a month (UTC), e.g. 2026-11-01T00:00:00Z"
        )
    if at.year == 9999 and at.month == 12:
        return FieldViolation(field_name, "must be a month before 9999-12")
    return None
