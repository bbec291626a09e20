"""Domain errors: every failure has a reason a program can branch on.

    DomainError
     ├── InvalidArgument          INVALID_FIELD (+ the field violations)
     ├── CustomerNotFound         CUSTOMER_NOT_FOUND
     ├── NoPrice                  NO_PRICE
     ├── BucketNotFound           BUCKET_NOT_FOUND
     ├── InsufficientUnits        INSUFFICIENT_UNITS
     ├── BucketNotActive          BUCKET_NOT_ACTIVE
     ├── IdempotencyKeyReused     IDEMPOTENCY_KEY_REUSED
     ├── OutcomeNotFound          OUTCOME_NOT_FOUND
     └── OutcomeReversed          OUTCOME_REVERSED

The API layer maps each class to a gRPC code in one table; the domain never
knows about gRPC.
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


class CustomerNotFound(DomainError):
    reason = "CUSTOMER_NOT_FOUND"


class NoPrice(DomainError):
    reason = "NO_PRICE"


class BucketNotFound(DomainError):
    reason = "BUCKET_NOT_FOUND"


class InsufficientUnits(DomainError):
    reason = "INSUFFICIENT_UNITS"


class BucketNotActive(DomainError):
    reason = "BUCKET_NOT_ACTIVE"


class IdempotencyKeyReused(DomainError):
    reason = "IDEMPOTENCY_KEY_REUSED"


class OutcomeNotFound(DomainError):
    reason = "OUTCOME_NOT_FOUND"


class OutcomeReversed(DomainError):
    reason = "OUTCOME_REVERSED"
