"""Domain errors: every failure has a reason a program can branch on.

    DomainError
     ├── InvalidArgument          INVALID_FIELD (+ the field violations)
     ├── NotFound                 (a category: what the request names does not exist)
     │    ├── CustomerNotFound    CUSTOMER_NOT_FOUND
     │    ├── BucketNotFound      BUCKET_NOT_FOUND
     │    └── OutcomeNotFound     OUTCOME_NOT_FOUND
     ├── PreconditionFailed       (a category: the ledger's state must change first)
     │    ├── NoPrice             NO_PRICE
     │    ├── InsufficientUnits   INSUFFICIENT_UNITS
     │    ├── BucketNotActive     BUCKET_NOT_ACTIVE
     │    ├── OutcomeReversed     OUTCOME_REVERSED
     │    ├── AmountOutOfRange    AMOUNT_OUT_OF_RANGE
     │    └── SpendLimitReached   SPEND_LIMIT_REACHED
     └── IdempotencyKeyReused     IDEMPOTENCY_KEY_REUSED

The API layer maps classes to gRPC codes in one table, by the nearest class
of an error's hierarchy that it names: a new subclass answers as its parent
does (its own ``reason`` aside). The classes below follow api.md's error
table. The domain never knows about gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (``prices[0].unit_price``) and why."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every expected failure; ``metadata`` carries the dynamic values."""

    reason = "UNKNOWN"

    def __init__(self, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata


class InvalidArgument(DomainError):
    reason = "INVALID_FIELD"

    def __init__(self, *violations: FieldViolation) -> None:
        text = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {text}", fields=",".join(v.field for v in violations))
        self.violations = violations

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))


class NotFound(DomainError):
    """Something the request names (a customer, a bucket, an outcome) does not exist."""


class PreconditionFailed(DomainError):
    """The request is well formed, but the ledger's state must change before it can succeed."""


class CustomerNotFound(NotFound):
    reason = "CUSTOMER_NOT_FOUND"


class NoPrice(PreconditionFailed):
    reason = "NO_PRICE"


class BucketNotFound(NotFound):
    reason = "BUCKET_NOT_FOUND"


class InsufficientUnits(PreconditionFailed):
    reason = "INSUFFICIENT_UNITS"


class BucketNotActive(PreconditionFailed):
    reason = "BUCKET_NOT_ACTIVE"


class IdempotencyKeyReused(DomainError):
    reason = "IDEMPOTENCY_KEY_REUSED"


class OutcomeNotFound(NotFound):
    reason = "OUTCOME_NOT_FOUND"


class OutcomeReversed(PreconditionFailed):
    reason = "OUTCOME_REVERSED"


class AmountOutOfRange(PreconditionFailed):
    """A balance or a month's total would leave the exact range the ledger keeps; nothing
    of the call was written."""

    reason = "AMOUNT_OUT_OF_RANGE"


class SpendLimitReached(PreconditionFailed):
    """The charge would take the month's charged plus pending amount past the customer's
    hard limit; nothing of the call was written."""

    reason = "SPEND_LIMIT_REACHED"
