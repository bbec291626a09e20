"""Prepaid buckets and their deterministic burn-down order."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rating_service.domain.errors import (
    BucketNotActive,
    BucketNotFound,
    InsufficientUnits,
    InvalidArgument,
)
from rating_service.domain.money import Money


class BucketSource(enum.Enum):
    PURCHASE = "PURCHASE"
    REALLOCATION = "REALLOCATION"
    PROMOTIONAL = "PROMOTIONAL"


class BucketStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    SCHEDULED = "SCHEDULED"
    EXPIRED = "EXPIRED"
    EXHAUSTED = "EXHAUSTED"
    VOIDED = "VOIDED"


@dataclass(frozen=True)
class Bucket:
    """A bucket's definition and its balances at one moment."""

    bucket_id: str
    outcome_type: str
    quantity: int
    remaining: int
    held: int
    valid_from: datetime
    valid_until: datetime
    unit_price: Money
    source: BucketSource
    priority: int
    created_sequence: int
    voided_at: datetime | None = None
    """When ``VoidBucket`` ended it; a voided bucket is never valid again."""

    def is_valid_at(self, at: datetime) -> bool:
        return self.voided_at is None and self.valid_from <= at < self.valid_until

    def status(self, now: datetime) -> BucketStatus:
        if self.voided_at is not None:
            return BucketStatus.VOIDED
        if now < self.valid_from:
            return BucketStatus.SCHEDULED
        if now >= self.valid_until:
            return BucketStatus.EXPIRED
        if self.remaining == 0 and self.held == 0:
            return BucketStatus.EXHAUSTED
        return BucketStatus.ACTIVE


@dataclass(frozen=True)
class Draw:
    """Units taken from one bucket, and what it has left afterwards."""

    bucket_id: str
    units: int
    remaining: int


def burn_down_key(bucket: Bucket) -> tuple[datetime, int, int]:
    """Earliest expiry first, then higher priority, then the older bucket."""
    return (bucket.valid_until, -bucket.priority, bucket.created_sequence)


def drawable(buckets: Iterable[Bucket], outcome_type: str, at: datetime) -> list[Bucket]:
    """The buckets that can cover ``outcome_type`` at ``at``, in burn-down order."""
    return sorted(
        (
            b
            for b in buckets
            if b.outcome_type == outcome_type and b.is_valid_at(at) and b.remaining > 0
        ),
        key=burn_down_key,
    )


def allocate(ordered: Sequence[Bucket], quantity: int) -> list[Draw]:
    """Take up to ``quantity`` units from ``ordered`` buckets, first to last."""
    draws: list[Draw] = []
    wanted = quantity
    for bucket in ordered:
        if wanted == 0:
            break
        units = min(wanted, bucket.remaining)
        if units > 0:
            draws.append(Draw(bucket.bucket_id, units, bucket.remaining - units))
            wanted -= units
    return draws


def plan_consumption(
    buckets: Sequence[Bucket],
    *,
    quantity: int,
    at: datetime,
    outcome_type: str,
    bucket_id: str,
) -> list[Draw]:
    """All-or-nothing draw for ConsumeBucket: the draws, or why none can be made."""
    if bucket_id:
        bucket = next((b for b in buckets if b.bucket_id == bucket_id), None)
        if bucket is None:
            raise BucketNotFound(f"bucket {bucket_id!r} does not exist", bucket_id=bucket_id)
        if outcome_type and bucket.outcome_type != outcome_type:
            raise InvalidArgument.field(
                "outcome_type",
                f"bucket {bucket_id!r} covers {bucket.outcome_type!r}, not {outcome_type!r}",
            )
        if bucket.voided_at is not None:
            raise BucketNotActive(
                f"bucket {bucket_id!r} was voided at {bucket.voided_at.isoformat()}",
                bucket_id=bucket_id,
            )
        if not bucket.is_valid_at(at):
            raise BucketNotActive(
                f"bucket {bucket_id!r} is valid from {bucket.valid_from.isoformat()} "
                f"until {bucket.valid_until.isoformat()}, not at {at.isoformat()}",
                bucket_id=bucket_id,
            )
        candidates = [bucket]
    else:
        candidates = drawable(buckets, outcome_type, at)
    available = sum(b.remaining for b in candidates)
    if available < quantity:
        raise InsufficientUnits(
            f"{quantity} units requested but only {available} can be drawn; nothing was consumed",
            requested=str(quantity),
            available=str(available),
        )
    return allocate(candidates, quantity)
