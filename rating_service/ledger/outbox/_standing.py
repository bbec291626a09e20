"""Each customer's standing with the reporter, for an operator (``rating-service status``).

Read-only, one row per customer: how far the reporter trails the ledger (entries not yet
planned, meter events not yet sent, and since when) and whether it has parked the customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from rating_service.ledger.codec import from_micros
from rating_service.ledger.outbox._cursors import CURSOR_SEQUENCE, CUSTOMERS_WITH_CURSOR
from rating_service.ledger.schema import customers, ledger_entries, stripe_cursors
from rating_service.ledger.schema import stripe_meter_events as events


@dataclass(frozen=True)
class ReportingStanding:
    customer_id: str
    stripe_customer_id: str
    entries_unplanned: int
    oldest_unplanned_at: datetime | None
    """When the first entry the reporter has not planned was recorded (None: all planned)."""
    events_unsent: int
    oldest_unsent_at: datetime | None
    """When the oldest meter event not yet accepted by Stripe was planned."""
    parked_error: str | None
    parked_at: datetime | None


def reporting_standing(conn: Connection, customer_id: str | None) -> list[ReportingStanding]:
    """Every customer's standing (or one's), in customer id order; unknown ids give nothing."""
    first_unplanned = ledger_entries.alias("first_unplanned")
    unsent = (
        select(
            events.c.customer_id,
            func.count().label("count"),
            func.min(events.c.planned_at).label("oldest"),
        )
        .where(events.c.sent_at.is_(None))
        .group_by(events.c.customer_id)
        .subquery()
    )
    query = (
        select(
            customers.c.customer_id,
            customers.c.stripe_customer_id,
            (customers.c.head_sequence - CURSOR_SEQUENCE).label("unplanned"),
            first_unplanned.c.recorded_at.label("unplanned_since"),
            func.coalesce(unsent.c.count, 0).label("unsent"),
            unsent.c.oldest.label("unsent_since"),
            stripe_cursors.c.parked_error,
            stripe_cursors.c.parked_at,
        )
        .select_from(
            CUSTOMERS_WITH_CURSOR.outerjoin(
                first_unplanned,
                and_(
                    first_unplanned.c.customer_id == customers.c.customer_id,
                    first_unplanned.c.sequence == CURSOR_SEQUENCE + 1,
                ),
            ).outerjoin(unsent, unsent.c.customer_id == customers.c.customer_id)
        )
        .order_by(customers.c.customer_id)
    )
    if customer_id is not None:
        query = query.where(customers.c.customer_id == customer_id)
    return [
        ReportingStanding(
            customer_id=r.customer_id,
            stripe_customer_id=r.stripe_customer_id,
            entries_unplanned=int(r.unplanned),
            oldest_unplanned_at=_instant(r.unplanned_since),
            events_unsent=int(r.unsent),
            oldest_unsent_at=_instant(r.unsent_since),
            parked_error=r.parked_error,
            parked_at=_instant(r.parked_at),
        )
        for r in conn.execute(query)
    ]


def _instant(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(int(micros))
