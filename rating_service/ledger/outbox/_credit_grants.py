"""Credit-grant bookkeeping: which buckets still need a grant, and the grant id once made.

The grant id is stored beside its bucket, so a bucket is granted once; a
bucket waits until the cursor has passed the entry that created it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from rating_service.domain.buckets import BucketSource
from rating_service.ledger.codec import from_micros
from rating_service.ledger.outbox._cursors import REPORTABLE, VERIFIED
from rating_service.ledger.schema import buckets, customers, stripe_cursors


@dataclass(frozen=True)
class GrantToCreate:
    customer_id: str
    stripe_customer_id: str
    verified: bool
    bucket_id: str
    outcome_type: str
    quantity: int
    unit_price_nanos: int
    currency: str
    valid_from: datetime
    valid_until: datetime
    source: BucketSource


def grants_to_create(conn: Connection, limit: int) -> list[GrantToCreate]:
    """Buckets the cursor has passed that have no credit grant yet."""
    rows = conn.execute(
        select(buckets, customers.c.stripe_customer_id, VERIFIED.label("verified"))
        .select_from(
            buckets.join(customers, customers.c.customer_id == buckets.c.customer_id).join(
                stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id
            )
        )
        .where(
            buckets.c.stripe_credit_grant_id.is_(None),
            buckets.c.created_sequence <= stripe_cursors.c.sequence,
            REPORTABLE,
        )
        .order_by(buckets.c.customer_id, buckets.c.created_sequence)
        .limit(limit)
    )
    return [
        GrantToCreate(
            customer_id=r.customer_id,
            stripe_customer_id=r.stripe_customer_id,
            verified=bool(r.verified),
            bucket_id=r.bucket_id,
            outcome_type=r.outcome_type,
            quantity=r.quantity,
            unit_price_nanos=r.unit_price_nanos,
            currency=r.currency,
            valid_from=from_micros(r.valid_from),
            valid_until=from_micros(r.valid_until),
            source=BucketSource(r.source),
        )
        for r in rows
    ]


def record_grant(conn: Connection, customer_id: str, bucket_id: str, grant_id: str) -> None:
    """Store the grant id beside the bucket (empty: the bucket needs no grant)."""
    conn.execute(
        update(buckets)
        .where(buckets.c.customer_id == customer_id, buckets.c.bucket_id == bucket_id)
        .values(stripe_credit_grant_id=grant_id)
    )
