"""Credit-grant bookkeeping: each bucket's grant version, its creation, and older ones voided.

A bucket's grant waits until the cursor has passed the entry that created the
bucket. Planning a ledger range that draws from a bucket by hand or voids it
plans the grant's next version (``domain.grants``) in the same transaction as
the cursor: the bucket's ``stripe_grant_version`` goes up, ``stripe_grant_units``
holds what the grant is now worth, the grant id is cleared (so the new version
is created) and ``stripe_grant_stale`` is set (so older grants are voided once
it exists). Each step is retried until Stripe has it; a crash in between
repeats a step whose key (bucket and version) makes it harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import false, func, or_, select, true, update
from sqlalchemy.engine import Connection

from rating_service.domain.buckets import BucketSource
from rating_service.domain.grants import BucketMove, grant_reductions, may_lower_grants
from rating_service.domain.postings import EntryKind, bucket_account_affixes
from rating_service.ledger.codec import from_micros
from rating_service.ledger.grant_prices import GrantPrices
from rating_service.ledger.outbox._cursors import REPORTABLE, VERIFIED
from rating_service.ledger.schema import (
    buckets,
    customers,
    ledger_postings,
    stripe_cursors,
)

GRANT_UNITS = func.coalesce(buckets.c.stripe_grant_units, buckets.c.quantity)
"""What the bucket's planned grant version is worth, in units."""

_PARTS = {part: bucket_account_affixes(part) for part in ("drawn", "expired")}


@dataclass(frozen=True)
class GrantToCreate:
    customer_id: str
    stripe_customer_id: str
    verified: bool
    bucket_id: str
    outcome_type: str
    quantity: int
    unit_price_nanos: int
    """What the grant pays per unit (``GrantPrices``)."""
    currency: str
    valid_from: datetime
    valid_until: datetime
    source: BucketSource
    version: int = 1
    units: int = 0
    """What this version is worth, in units (``quantity`` less manual draws and voids)."""


_GRANT_ROWS = buckets.join(customers, customers.c.customer_id == buckets.c.customer_id).join(
    stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id
)


def grants_to_create(conn: Connection, limit: int) -> list[GrantToCreate]:
    """Buckets the cursor has passed whose planned grant version does not exist yet."""
    rows = conn.execute(
        select(
            buckets,
            GRANT_UNITS.label("grant_units"),
            customers.c.stripe_customer_id,
            VERIFIED.label("verified"),
        )
        .select_from(_GRANT_ROWS)
        .where(
            buckets.c.stripe_credit_grant_id.is_(None),
            buckets.c.created_sequence <= stripe_cursors.c.sequence,
            REPORTABLE,
        )
        .order_by(buckets.c.customer_id, buckets.c.created_sequence)
        .limit(limit)
    )
    prices = GrantPrices(conn)
    return [
        GrantToCreate(
            customer_id=r.customer_id,
            stripe_customer_id=r.stripe_customer_id,
            verified=bool(r.verified),
            bucket_id=r.bucket_id,
            outcome_type=r.outcome_type,
            quantity=int(r.quantity),
            unit_price_nanos=prices.of(r._mapping),
            currency=r.currency,
            valid_from=from_micros(r.valid_from),
            valid_until=from_micros(r.valid_until),
            source=BucketSource(r.source),
            version=int(r.stripe_grant_version),
            units=int(r.grant_units),
        )
        for r in rows
    ]


def record_grant(
    conn: Connection, customer_id: str, bucket_id: str, grant_id: str, version: int = 1
) -> None:
    """Store the grant id of ``version`` beside the bucket (empty: it is worth nothing).

    Ignored when a newer version was planned meanwhile: that one is created next.
    """
    _update_version(conn, customer_id, bucket_id, version, stripe_credit_grant_id=grant_id)


@dataclass(frozen=True)
class StaleGrants:
    """A bucket whose current grant exists while older ones may still be live in Stripe."""

    customer_id: str
    stripe_customer_id: str
    bucket_id: str
    version: int
    grant_id: str
    """The current version's grant ("" when it is worth nothing): never voided."""


def stale_grants(conn: Connection, limit: int) -> list[StaleGrants]:
    """Buckets whose older grants are to be voided (the current one exists)."""
    rows = conn.execute(
        select(
            buckets.c.customer_id,
            buckets.c.bucket_id,
            buckets.c.stripe_grant_version,
            buckets.c.stripe_credit_grant_id,
            customers.c.stripe_customer_id,
        )
        .select_from(_GRANT_ROWS)
        .where(
            buckets.c.stripe_grant_stale == true(),
            buckets.c.stripe_credit_grant_id.is_not(None),
            REPORTABLE,
        )
        .order_by(buckets.c.customer_id, buckets.c.bucket_id)
        .limit(limit)
    )
    return [
        StaleGrants(
            r.customer_id,
            r.stripe_customer_id,
            r.bucket_id,
            int(r.stripe_grant_version),
            r.stripe_credit_grant_id,
        )
        for r in rows
    ]


def record_stale_voided(conn: Connection, customer_id: str, bucket_id: str, version: int) -> None:
    """Every grant older than ``version`` is voided in Stripe."""
    _update_version(conn, customer_id, bucket_id, version, stripe_grant_stale=false())


def grant_reductions_of(
    conn: Connection, customer_id: str, entries: Sequence[tuple[int, EntryKind]]
) -> dict[str, int]:
    """Bucket id -> units its grant loses to the entries (manual draws, voids); reads only.

    ``lower_grants`` saves them with the range's plan (``save_plan``), in one
    transaction with the cursor, so a range lowers a grant exactly once,
    whatever crashes and retries follow.
    """
    kinds = {kind for _, kind in entries}
    if not may_lower_grants(kinds, has_voided_bucket=True):
        return {}
    voided_from = {
        r.bucket_id: int(r.void_sequence)
        for r in conn.execute(
            select(buckets.c.bucket_id, buckets.c.void_sequence).where(
                buckets.c.customer_id == customer_id, buckets.c.void_sequence.is_not(None)
            )
        )
    }
    if not may_lower_grants(kinds, has_voided_bucket=bool(voided_from)):
        return {}
    asked = {
        sequence: kind
        for sequence, kind in entries
        if may_lower_grants({kind}, has_voided_bucket=bool(voided_from))
    }
    postings = conn.execute(
        select(ledger_postings.c.sequence, ledger_postings.c.account, ledger_postings.c.amount)
        .where(
            ledger_postings.c.customer_id == customer_id,
            ledger_postings.c.sequence.in_(sorted(asked)),
            ledger_postings.c.amount > 0,
            or_(
                *(
                    ledger_postings.c.account.like(f"{before}%{after}")
                    for before, after in _PARTS.values()
                )
            ),
        )
        .order_by(ledger_postings.c.sequence, ledger_postings.c.position)
    )
    moves = [
        BucketMove(int(p.sequence), asked[int(p.sequence)], bucket_id, part, int(p.amount))
        for p in postings
        for part, (before, after) in _PARTS.items()
        if p.account.startswith(before)
        and p.account.endswith(after)
        and (bucket_id := p.account[len(before) : len(p.account) - len(after)])
    ]
    return grant_reductions(moves, voided_from)


def lower_grants(conn: Connection, customer_id: str, lowered: Mapping[str, int]) -> None:
    """Plan the next grant version of each bucket, worth ``lowered[bucket]`` units less."""
    for bucket_id, units in lowered.items():
        conn.execute(
            update(buckets)
            .where(buckets.c.customer_id == customer_id, buckets.c.bucket_id == bucket_id)
            .values(
                stripe_grant_units=GRANT_UNITS - units,
                stripe_grant_version=buckets.c.stripe_grant_version + 1,
                stripe_grant_stale=true(),
                stripe_credit_grant_id=None,
            )
        )


def _update_version(
    conn: Connection, customer_id: str, bucket_id: str, version: int, **values: object
) -> None:
    """Set ``values`` on the bucket while ``version`` is its latest planned grant version."""
    conn.execute(
        update(buckets)
        .where(
            buckets.c.customer_id == customer_id,
            buckets.c.bucket_id == bucket_id,
            buckets.c.stripe_grant_version == version,
        )
        .values(**values)
    )
