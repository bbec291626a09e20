"""Commands on a customer's buckets: create one, consume units from them, void one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rating_service.domain.buckets import BucketSource
from rating_service.domain.commands._rules import (
    MAX_REASON_BYTES,
    bytes_violation,
    fingerprint,
    price_violation,
    quantity_violation,
    raise_if_any,
)
from rating_service.domain.errors import FieldViolation
from rating_service.domain.identifiers import currency_violation, identifier_violation
from rating_service.domain.money import Money

DEFAULT_BUCKET_VALIDITY = timedelta(days=365)


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
            quantity_violation("quantity", self.quantity, minimum=1),
            bytes_violation("reason", self.reason, MAX_REASON_BYTES),
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
            size = quantity_violation("quantity", self.quantity, minimum=1)
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
                price = price_violation("unit_price", self.unit_price, minimum=1)
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
class VoidBucket:
    customer_id: str
    bucket_id: str
    reason: str

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("bucket_id", self.bucket_id),
            bytes_violation("reason", self.reason, MAX_REASON_BYTES),
        )

    def fingerprint(self) -> str:
        return fingerprint("void", self.reason)
