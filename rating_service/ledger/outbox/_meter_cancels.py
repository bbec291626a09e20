"""Cancels a reversal planned: which to make, and what Stripe's answer settles.

A reversal of usage already in a meter event cancels that event and plans
its replacement (``_range_plans``); the replacement is sent only once Stripe
confirmed the cancel, and a cancel is made only of an event Stripe acknowledged.
Stripe may refuse it (too late, or no such event): the reversal becomes the
month's debt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from rating_service.ledger.codec import to_micros
from rating_service.ledger.outbox._cursors import REPORTABLE
from rating_service.ledger.schema import (
    customers,
    stripe_cursors,
    stripe_meter_events,
    stripe_usage_periods,
)


@dataclass(frozen=True)
class PendingCancel:
    identifier: str
    customer_id: str
    event_name: str


def pending_cancels(
    conn: Connection, limit: int, event_names: Iterable[str]
) -> list[PendingCancel]:
    """Sent events a reversal cancels, oldest plan first; their replacements wait for them."""
    rows = conn.execute(
        select(
            stripe_meter_events.c.identifier,
            stripe_meter_events.c.customer_id,
            stripe_meter_events.c.event_name,
        )
        .select_from(
            stripe_meter_events.join(
                customers, customers.c.customer_id == stripe_meter_events.c.customer_id
            ).outerjoin(stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id)
        )
        .where(
            stripe_meter_events.c.cancel_planned_at.is_not(None),
            stripe_meter_events.c.cancelled_at.is_(None),
            # An event planned but not yet sent is sent first: only then is a cancel's
            # answer unambiguous (a send whose answer was lost may have reached Stripe).
            stripe_meter_events.c.sent_at.is_not(None),
            stripe_meter_events.c.event_name.in_(list(event_names)),
            REPORTABLE,
        )
        .order_by(stripe_meter_events.c.cancel_planned_at, stripe_meter_events.c.first_sequence)
        .limit(limit)
    )
    return [PendingCancel(r.identifier, r.customer_id, r.event_name) for r in rows]


def mark_cancelled(conn: Connection, identifier: str, now: datetime) -> None:
    """Stripe confirmed the cancel: the event's replacement may now be sent."""
    conn.execute(
        update(stripe_meter_events)
        .where(stripe_meter_events.c.identifier == identifier)
        .values(cancelled_at=to_micros(now))
    )


def cancel_refused(conn: Connection, identifier: str) -> int:
    """Stripe refused the cancel (too late, or it has no such event): the reversals it carried
    become the month's debt.

    The event stays as Stripe counts it, its replacement (never sent) is
    dropped, and the units the cancel would have taken out are owed by the
    event's meter and month (policy step 3). Returns those units.
    """
    event = conn.execute(
        select(stripe_meter_events).where(stripe_meter_events.c.identifier == identifier)
    ).one()
    replacement = stripe_meter_events.c.replaces == identifier
    kept = conn.execute(
        select(func.coalesce(func.sum(stripe_meter_events.c.value), 0)).where(replacement)
    ).scalar_one()
    owed = int(event.value) - int(kept)
    conn.execute(delete(stripe_meter_events).where(replacement))
    conn.execute(
        update(stripe_meter_events)
        .where(stripe_meter_events.c.identifier == identifier)
        .values(cancel_planned_at=None)
    )
    conn.execute(
        update(stripe_usage_periods)
        .where(
            stripe_usage_periods.c.customer_id == event.customer_id,
            stripe_usage_periods.c.event_name == event.event_name,
            stripe_usage_periods.c.period == event.period,
        )
        .values(
            planned=stripe_usage_periods.c.planned + owed,
            debt=stripe_usage_periods.c.debt + owed,
        )
    )
    return owed
