"""What every command's ``validate`` and ``fingerprint`` share: limits, field checks, the hash."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from rating_service.domain.errors import FieldViolation, InvalidArgument
from rating_service.domain.identifiers import identifier_violation
from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price

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


@dataclass(frozen=True)
class OutcomeKey:
    """One customer's outcome, as confirming, reversing and explaining it name it."""

    customer_id: str
    outcome_id: str

    def key_violations(self) -> tuple[FieldViolation | None, FieldViolation | None]:
        return (
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("outcome_id", self.outcome_id),
        )

    def validate(self) -> None:
        raise_if_any(*self.key_violations())


def bytes_violation(field_name: str, value: str, limit: int) -> FieldViolation | None:
    if len(value.encode()) > limit:
        return FieldViolation(field_name, f"must be at most {limit} bytes")
    return None


def quantity_violation(field_name: str, value: int, *, minimum: int) -> FieldViolation | None:
    if not minimum <= value <= MAX_QUANTITY:
        return FieldViolation(
            field_name, f"must be between {minimum} and {MAX_QUANTITY}, got {value}"
        )
    return None


def price_violation(field_name: str, price: Money, *, minimum: int) -> FieldViolation | None:
    if price.nanos < minimum:
        return FieldViolation(
            field_name, "must be a positive amount" if minimum else "must not be negative"
        )
    if price.nanos > MAX_UNIT_PRICE_NANOS:
        return FieldViolation(
            field_name, f"must be at most {MAX_UNIT_PRICE_NANOS // 10**9} {price.currency}"
        )
    return None


def price_entry_violations(
    field_name: str, price: Price, currency: str, whose: str, seen: set[str]
) -> list[FieldViolation | None]:
    """What is wrong with one entry of a price list in ``currency`` (``whose``: "rate card's").

    ``seen`` holds the outcome types of the entries before it; this one's is added.
    """
    violations: list[FieldViolation | None] = [
        identifier_violation(f"{field_name}.outcome_type", price.outcome_type)
    ]
    if price.outcome_type in seen:
        violations.append(
            FieldViolation(f"{field_name}.outcome_type", "each outcome type may appear once")
        )
    seen.add(price.outcome_type)
    bad_price = price_violation(f"{field_name}.unit_price", price.unit_price, minimum=0)
    if bad_price is not None:
        violations.append(bad_price)
    elif price.unit_price.currency != currency:
        violations.append(
            FieldViolation(
                f"{field_name}.unit_price.currency_code", f"must be the {whose} currency {currency}"
            )
        )
    return violations


def month_violation(field_name: str, at: datetime | None) -> FieldViolation | None:
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
