"""What the reporter's outbox says Stripe was told: read only, for explanations and invoices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, case, func, or_, select

from rating_service.domain.billing import MeterUsage
from rating_service.domain.explanation import MeterEvent
from rating_service.ledger.codec import from_micros
from rating_service.ledger.grant_prices import GrantPrices
from rating_service.ledger.schema import buckets, stripe_meter_events, stripe_usage_periods

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

_EVENTS = stripe_meter_events.c
_STANDING = _EVENTS.cancel_planned_at.is_(None)
"""Not cancelled, nor about to be (a replacement carries its remainder)."""
_IN_STRIPE = and_(_EVENTS.sent_at.is_not(None), _EVENTS.cancelled_at.is_(None))
"""Accepted by Stripe and not cancelled there: what Stripe counts now."""
_MONTH_EVENTS = (
    select(
        _EVENTS.event_name,
        func.coalesce(func.sum(case((_STANDING, _EVENTS.value), else_=0)), 0).label("planned"),
        func.coalesce(func.sum(case((_IN_STRIPE, _EVENTS.value), else_=0)), 0).label("sent"),
    )
    .where(
        stripe_meter_events.c.customer_id == bindparam("customer_id"),
        stripe_meter_events.c.period == bindparam("period"),
    )
    .group_by(stripe_meter_events.c.event_name)
)
_MONTH_STATES = select(
    stripe_usage_periods.c.event_name,
    stripe_usage_periods.c.debt,
    stripe_usage_periods.c.credited,
).where(
    stripe_usage_periods.c.customer_id == bindparam("customer_id"),
    stripe_usage_periods.c.period == bindparam("period"),
)
_GRANT = select(
    buckets.c.stripe_credit_grant_id,
    buckets.c.customer_id,
    buckets.c.outcome_type,
    buckets.c.valid_from,
    buckets.c.currency,
    buckets.c.unit_price_nanos,
    func.coalesce(buckets.c.stripe_grant_units, buckets.c.quantity).label("grant_units"),
).where(
    buckets.c.customer_id == bindparam("customer_id"),
    buckets.c.bucket_id == bindparam("bucket_id"),
)


class StripeReports:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def events_holding(self, customer_id: str, sequences: Sequence[int]) -> list[MeterEvent]:
        """Planned meter events of the customer whose ledger range holds one of ``sequences``."""
        if not sequences:
            return []
        e = stripe_meter_events.c
        query = select(stripe_meter_events).where(
            e.customer_id == customer_id,
            or_(*((e.first_sequence <= s) & (e.last_sequence >= s) for s in sequences)),
        )
        return [
            MeterEvent(
                identifier=r["identifier"],
                event_name=r["event_name"],
                value=r["value"],
                window_start=from_micros(r["window_start"]),
                first_sequence=r["first_sequence"],
                last_sequence=r["last_sequence"],
                sent_at=None if r["sent_at"] is None else from_micros(r["sent_at"]),
                cancelled_at=None if r["cancelled_at"] is None else from_micros(r["cancelled_at"]),
            )
            for r in self._unit.db().conn.execute(query).mappings()
        ]

    def month(self, customer_id: str, period: str) -> list[MeterUsage]:
        """Per meter, what the reporter planned and sent of the month (``YYYY-MM``) so far."""
        params = {"customer_id": customer_id, "period": period}
        states = {r["event_name"]: r for r in self._unit.db().all(_MONTH_STATES, params)}
        events = {r["event_name"]: r for r in self._unit.db().all(_MONTH_EVENTS, params)}
        return [
            MeterUsage(
                name,
                int(events[name]["planned"]) if name in events else 0,
                int(events[name]["sent"]) if name in events else 0,
                states[name]["debt"] if name in states else 0,
                states[name]["credited"] if name in states else 0,
            )
            for name in sorted(set(states) | set(events))
        ]

    def credit_grant(self, customer_id: str, bucket_id: str) -> tuple[str, int]:
        """The bucket's credit grant id (empty while none is made, or none is needed) and
        what it is worth in nanos of the bucket's currency (``GrantPrices``)."""
        sql = self._unit.db()
        row = sql.first(_GRANT, {"customer_id": customer_id, "bucket_id": bucket_id})
        if row is None:
            return "", 0
        worth = GrantPrices(sql.conn).of(row) * int(row["grant_units"])
        return row["stripe_credit_grant_id"] or "", worth
