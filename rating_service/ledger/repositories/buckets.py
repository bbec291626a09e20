"""Buckets: their terms in ``buckets``, their units as balances of the ledger's accounts."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, literal, select, update
from sqlalchemy.sql import FromClause, Select
from sqlalchemy.sql.elements import ColumnElement

from rating_service.domain.buckets import Bucket, BucketSource
from rating_service.domain.money import Money
from rating_service.domain.postings import (
    bucket_account,
    bucket_account_affixes,
    unit_asset,
    unit_asset_prefix,
)
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import RowLike
from rating_service.ledger.schema import balances, buckets

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit


@dataclasses.dataclass(frozen=True)
class StoredVoid:
    """What ``VoidBucket`` recorded: its payload's fingerprint, entry, units expired, time."""

    fingerprint: str
    sequence: int
    units: int
    at: datetime


_available = balances.alias("available")
_held = balances.alias("held")


def _balance_join(table: FromClause, part: str) -> ColumnElement[bool]:
    """Joins a bucket to its balance ``bucket_account(id, part)`` (one primary-key seek)."""
    before, after = bucket_account_affixes(part)
    return and_(
        table.c.customer_id == buckets.c.customer_id,
        table.c.account == literal(before) + buckets.c.bucket_id + literal(after),
        table.c.asset == literal(unit_asset_prefix()) + buckets.c.outcome_type,
    )


def _bucket_query() -> Select[Any]:
    return (
        select(buckets, _available.c.amount.label("remaining"), _held.c.amount.label("held"))
        .select_from(buckets)
        .outerjoin(_available, _balance_join(_available, "available"))
        .outerjoin(_held, _balance_join(_held, "held"))
    )


def bucket_from_row(row: RowLike) -> Bucket:
    return Bucket(
        bucket_id=row["bucket_id"],
        outcome_type=row["outcome_type"],
        quantity=row["quantity"],
        remaining=row["remaining"] or 0,
        held=row["held"] or 0,
        valid_from=from_micros(row["valid_from"]),
        valid_until=from_micros(row["valid_until"]),
        unit_price=Money(row["currency"], row["unit_price_nanos"]),
        source=BucketSource(row["source"]),
        priority=row["priority"],
        created_sequence=row["created_sequence"],
        voided_at=None if row["voided_at"] is None else from_micros(row["voided_at"]),
    )


_KEY = and_(
    buckets.c.customer_id == bindparam("customer_id"),
    buckets.c.bucket_id == bindparam("bucket_id"),
)
_BUCKET = _bucket_query().where(_KEY)
_ALL = _bucket_query().where(buckets.c.customer_id == bindparam("customer_id"))
_UNEXPIRED_OF_TYPE = _bucket_query().where(
    buckets.c.customer_id == bindparam("customer_id"),
    buckets.c.outcome_type == bindparam("outcome_type"),
    buckets.c.valid_until > bindparam("at"),
)
_CREATED = select(buckets.c.fingerprint, buckets.c.created_sequence).where(_KEY)
_EXPIRED_SEQUENCE = select(buckets.c.expired_sequence).where(_KEY)
_MARK_EXPIRED = (
    update(buckets)
    .where(  # an UPDATE's own bind names may not be its columns' names
        buckets.c.customer_id == bindparam("b_customer_id"),
        buckets.c.bucket_id == bindparam("b_bucket_id"),
    )
    .values(expired_sequence=bindparam("sequence"))
)
_VOID = select(
    buckets.c.void_fingerprint, buckets.c.void_sequence, buckets.c.void_units, buckets.c.voided_at
).where(_KEY)
_MARK_VOIDED = (
    update(buckets)
    .where(
        buckets.c.customer_id == bindparam("b_customer_id"),
        buckets.c.bucket_id == bindparam("b_bucket_id"),
    )
    .values(
        voided_at=bindparam("v_at"),
        void_sequence=bindparam("v_sequence"),
        void_units=bindparam("v_units"),
        void_fingerprint=bindparam("v_fingerprint"),
        # Closed for the expiry sweep too; a unit given back to it later expires at once.
        expired_sequence=bindparam("v_sequence"),
    )
)
_EXPIRING = (
    select(buckets.c.customer_id, buckets.c.bucket_id)
    .where(buckets.c.expired_sequence.is_(None), buckets.c.valid_until <= bindparam("now"))
    .order_by(buckets.c.valid_until)
    .limit(bindparam("limit"))
)
_INSERT = buckets.insert()


class Buckets:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def get(self, customer_id: str, bucket_id: str) -> Bucket | None:
        row = self._unit.db().first(_BUCKET, {"customer_id": customer_id, "bucket_id": bucket_id})
        return None if row is None else bucket_from_row(row)

    def all(self, customer_id: str) -> list[Bucket]:
        return [bucket_from_row(r) for r in self._unit.db().all(_ALL, {"customer_id": customer_id})]

    def unexpired(self, customer_id: str, outcome_type: str, at: datetime) -> list[Bucket]:
        """Buckets of one type not yet expired at ``at``, drawn or not (one index range).

        In a write batch they are read once per customer and type, and the
        batch's staged draws are applied to them in memory.
        """
        caches, staged = self._unit.caches, self._unit.staged
        micros = to_micros(at)
        if caches is None or staged is None:
            params = {"customer_id": customer_id, "outcome_type": outcome_type, "at": micros}
            return [bucket_from_row(r) for r in self._unit.sql.all(_UNEXPIRED_OF_TYPE, params)]
        of_customer = caches.buckets.setdefault(customer_id, {})
        cached = of_customer.get(outcome_type)
        if cached is None or micros < cached[0]:
            params = {"customer_id": customer_id, "outcome_type": outcome_type, "at": micros}
            loaded = [bucket_from_row(r) for r in self._unit.sql.all(_UNEXPIRED_OF_TYPE, params)]
            cached = of_customer[outcome_type] = (micros, loaded)
        asset = unit_asset(outcome_type)
        deltas = staged.deltas
        found: list[Bucket] = []
        for bucket in cached[1]:
            if bucket.valid_until <= at:
                continue
            available = deltas.get(
                (customer_id, bucket_account(bucket.bucket_id, "available"), asset), 0
            )
            held = deltas.get((customer_id, bucket_account(bucket.bucket_id, "held"), asset), 0)
            if available or held:
                bucket = dataclasses.replace(
                    bucket, remaining=bucket.remaining + available, held=bucket.held + held
                )
            found.append(bucket)
        return found

    def drawable(self, customer_id: str, outcome_type: str, at: datetime) -> list[Bucket]:
        """Buckets of one type valid at ``at`` with units left (the domain orders them)."""
        return [
            b
            for b in self.unexpired(customer_id, outcome_type, at)
            if b.remaining > 0 and b.is_valid_at(at)
        ]

    def created(self, customer_id: str, bucket_id: str) -> tuple[str, int] | None:
        """The fingerprint of the call that created it and that call's ledger sequence."""
        row = self._unit.db().first(_CREATED, {"customer_id": customer_id, "bucket_id": bucket_id})
        return None if row is None else (row["fingerprint"], row["created_sequence"])

    def add(
        self,
        customer_id: str,
        bucket: Bucket,
        *,
        created_sequence: int,
        fingerprint: str,
    ) -> None:
        self._unit.customer_changed(customer_id)
        self._unit.db_write().many(
            _INSERT,
            [
                {
                    "customer_id": customer_id,
                    "bucket_id": bucket.bucket_id,
                    "outcome_type": bucket.outcome_type,
                    "quantity": bucket.quantity,
                    "unit_price_nanos": bucket.unit_price.nanos,
                    "currency": bucket.unit_price.currency,
                    "valid_from": to_micros(bucket.valid_from),
                    "valid_until": to_micros(bucket.valid_until),
                    "source": bucket.source.value,
                    "priority": bucket.priority,
                    "created_sequence": created_sequence,
                    "fingerprint": fingerprint,
                }
            ],
        )

    def has_expired(self, customer_id: str, bucket_id: str) -> bool:
        """True once the expiry sweep has closed the bucket: units returned to it expire too."""
        row = self._unit.db().first(
            _EXPIRED_SEQUENCE, {"customer_id": customer_id, "bucket_id": bucket_id}
        )
        return row is not None and row["expired_sequence"] is not None

    def mark_expired(self, customer_id: str, bucket_id: str, sequence: int) -> None:
        """Closed by the expiry sweep (``sequence`` 0: nothing was left to expire)."""
        self._unit.customer_changed(customer_id)
        self._unit.db_write().many(
            _MARK_EXPIRED,
            [{"b_customer_id": customer_id, "b_bucket_id": bucket_id, "sequence": sequence}],
        )

    def void(self, customer_id: str, bucket_id: str) -> StoredVoid | None:
        """How ``VoidBucket`` voided it, or None while it is not voided."""
        row = self._unit.db().first(_VOID, {"customer_id": customer_id, "bucket_id": bucket_id})
        if row is None or row["voided_at"] is None:
            return None
        return StoredVoid(
            fingerprint=row["void_fingerprint"],
            sequence=row["void_sequence"],
            units=row["void_units"],
            at=from_micros(row["voided_at"]),
        )

    def mark_voided(self, customer_id: str, bucket_id: str, void: StoredVoid) -> None:
        self._unit.customer_changed(customer_id)
        self._unit.db_write().many(
            _MARK_VOIDED,
            [
                {
                    "b_customer_id": customer_id,
                    "b_bucket_id": bucket_id,
                    "v_at": to_micros(void.at),
                    "v_sequence": void.sequence,
                    "v_units": void.units,
                    "v_fingerprint": void.fingerprint,
                }
            ],
        )

    def expiring(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(customer_id, bucket_id) of buckets past ``valid_until`` not yet closed, oldest first."""
        rows = self._unit.db().all(_EXPIRING, {"now": to_micros(now), "limit": limit})
        return [(r["customer_id"], r["bucket_id"]) for r in rows]
