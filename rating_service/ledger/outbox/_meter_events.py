"""Meter events planned and not yet in Stripe: which to send, and marking them sent.

A range's events are planned once (``_range_plans``); sending is then
retried until Stripe has them, and ``mark_sent`` records that it has. A
replacement waits until Stripe has cancelled the event it replaces
(``_meter_cancels``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection

from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.outbox._cursors import REPORTABLE, VERIFIED
from rating_service.ledger.schema import customers, stripe_cursors, stripe_meter_events

_REPLACED = stripe_meter_events.alias("replaced")


@dataclass(frozen=True)
class UnsentEvent:
    identifier: str
    customer_id: str
    stripe_customer_id: str
    verified: bool
    event_name: str
    value: int
    window_start: datetime


def unsent_events(conn: Connection, limit: int, event_names: Iterable[str]) -> list[UnsentEvent]:
    """Planned events not yet in Stripe, for meters that exist (Stripe drops the others)."""
    rows = conn.execute(
        select(
            stripe_meter_events,
            customers.c.stripe_customer_id,
            VERIFIED.label("verified"),
        )
        .select_from(
            stripe_meter_events.join(
                customers, customers.c.customer_id == stripe_meter_events.c.customer_id
            ).outerjoin(stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id)
        )
        .where(
            stripe_meter_events.c.sent_at.is_(None),
            stripe_meter_events.c.event_name.in_(list(event_names)),
            REPORTABLE,
            # A replacement waits until Stripe has cancelled the event it replaces.
            or_(
                stripe_meter_events.c.replaces.is_(None),
                select(_REPLACED.c.identifier)
                .where(
                    _REPLACED.c.identifier == stripe_meter_events.c.replaces,
                    _REPLACED.c.cancelled_at.is_not(None),
                )
                .exists(),
            ),
        )
        .order_by(stripe_meter_events.c.planned_at, stripe_meter_events.c.first_sequence)
        .limit(limit)
    )
    return [
        UnsentEvent(
            identifier=r.identifier,
            customer_id=r.customer_id,
            stripe_customer_id=r.stripe_customer_id,
            verified=bool(r.verified),
            event_name=r.event_name,
            value=r.value,
            window_start=from_micros(r.window_start),
        )
        for r in rows
    ]


def unsent_event_names(conn: Connection) -> list[str]:
    """Meters with events to send or cancels to make."""
    return list(
        conn.execute(
            select(stripe_meter_events.c.event_name)
            .where(
                or_(
                    stripe_meter_events.c.sent_at.is_(None),
                    and_(
                        stripe_meter_events.c.cancel_planned_at.is_not(None),
                        stripe_meter_events.c.cancelled_at.is_(None),
                    ),
                )
            )
            .distinct()
        ).scalars()
    )


_MARK_SENT = (
    update(stripe_meter_events)
    .where(stripe_meter_events.c.identifier == bindparam("id"))
    .values(sent_at=bindparam("at"), stripe_period=bindparam("late_period"))
)


def mark_sent(
    conn: Connection,
    identifiers: list[str],
    now: datetime,
    late: Mapping[str, str] | None = None,
) -> None:
    """Stripe has these events; ``late`` names the month Stripe counts an event in when it
    was stamped after its own month (sent after Stripe's 35 days: ``stripe_timestamp``)."""
    late = late or {}
    if identifiers:
        conn.execute(
            _MARK_SENT,
            [{"id": i, "at": to_micros(now), "late_period": late.get(i)} for i in identifiers],
        )
