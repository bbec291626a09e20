"""Each customer's reporting cursor: how far its ledger is planned, verified or parked.

``stripe_cursors`` holds one row per customer the reporter has touched; the
expressions here say which customers are reportable and whether Stripe knows
them, so every query of the outbox asks the same question the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from rating_service.ledger.codec import to_micros
from rating_service.ledger.schema import customers, stripe_cursors

CURSOR_SEQUENCE = func.coalesce(stripe_cursors.c.sequence, 0)
"""The last sequence planned (0 before the first plan)."""
REPORTABLE = and_(customers.c.stripe_customer_id != "", stripe_cursors.c.parked_error.is_(None))
"""Customers with a Stripe id and not parked: the others' work waits."""
CUSTOMERS_WITH_CURSOR = customers.outerjoin(
    stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id
)
VERIFIED = func.coalesce(stripe_cursors.c.verified_stripe_id, "") == customers.c.stripe_customer_id
"""Stripe has confirmed the customer's current Stripe id (a changed id is asked again)."""


@dataclass(frozen=True)
class CustomerWork:
    customer_id: str
    stripe_customer_id: str
    cursor: int
    head: int
    verified: bool


def customers_with_work(conn: Connection, limit: int) -> list[CustomerWork]:
    """Reportable customers whose ledger has moved past their cursor."""
    rows = conn.execute(
        select(
            customers.c.customer_id,
            customers.c.stripe_customer_id,
            customers.c.head_sequence,
            CURSOR_SEQUENCE.label("cursor"),
            VERIFIED.label("verified"),
        )
        .select_from(CUSTOMERS_WITH_CURSOR)
        .where(REPORTABLE, customers.c.head_sequence > CURSOR_SEQUENCE)
        .order_by(customers.c.customer_id)
        .limit(limit)
    )
    return [
        CustomerWork(
            r.customer_id, r.stripe_customer_id, r.cursor, r.head_sequence, bool(r.verified)
        )
        for r in rows
    ]


def mark_verified(
    conn: Connection, customer_id: str, stripe_customer_id: str, now: datetime
) -> None:
    upsert_cursor(conn, customer_id, now, verified_stripe_id=stripe_customer_id)


def park(conn: Connection, customer_id: str, error: str, now: datetime) -> None:
    upsert_cursor(conn, customer_id, now, parked_error=error[:2000], parked_at=to_micros(now))


def unpark_all(conn: Connection, now: datetime) -> list[str]:
    """Clear every parked customer (``report --retry-parked``); they are verified again."""
    ids = list(
        conn.execute(
            select(stripe_cursors.c.customer_id).where(stripe_cursors.c.parked_error.is_not(None))
        ).scalars()
    )
    if ids:
        conn.execute(
            update(stripe_cursors)
            .where(stripe_cursors.c.customer_id.in_(ids))
            .values(
                parked_error=None,
                parked_at=None,
                verified_stripe_id=None,
                updated_at=to_micros(now),
            )
        )
    return ids


def upsert_cursor(conn: Connection, customer_id: str, now: datetime, **values: object) -> None:
    """Set ``values`` on the customer's cursor row, creating it (at sequence 0) if missing."""
    exists = conn.execute(
        select(stripe_cursors.c.customer_id).where(stripe_cursors.c.customer_id == customer_id)
    ).first()
    if exists:
        conn.execute(
            update(stripe_cursors)
            .where(stripe_cursors.c.customer_id == customer_id)
            .values(updated_at=to_micros(now), **values)
        )
    else:
        conn.execute(
            stripe_cursors.insert().values(
                {"customer_id": customer_id, "sequence": 0, "updated_at": to_micros(now), **values}
            )
        )
