"""What the reporter's outbox says Stripe was told: read only, for explanations and invoices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, case, func, or_, select

from rating_service.domain.billing import MeterUsage
from rating_service.domain.explanation import MeterEvent
from rating_service.ledger.codec import from_micros
from rating_service.ledger.schema import buckets, stripe_meter_events, stripe_usage_periods

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

_EVENT_SENT = stripe_meter_events.c.sent_at.is_not(None)
_SENT_VALUE = func.coalesce(
    func.sum(case((_EVENT_SENT, stripe_meter_events.c.value), else_=0)), 0
).label("sent")
_MONTH_EVENTS = (
    select(
        stripe_meter_events.c.event_name,
        func.coalesce(func.sum(stripe_meter_events.c.value), 0).label("planned"),
        _SENT_VALUE,
    )
    .where(
        stripe_meter_events.c.customer_id == bindparam("customer_id"),
        stripe_meter_events.c.period == bindparam("period"),
    )
    .group_by(stripe_meter_events.c.event_name)
)
_MONTH_STATES = select(stripe_usage_periods.c.event_name, stripe_usage_periods.c.debt).where(
    stripe_usage_periods.c.customer_id == bindparam("customer_id"),
    stripe_usage_periods.c.period == bindparam("period"),
)
_GRANT = select(buckets.c.stripe_credit_grant_id).where(
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
            )
            for r in self._unit.db().conn.execute(query).mappings()
        ]

    def month(self, customer_id: str, period: str) -> list[MeterUsage]:
        """Per meter, what the reporter planned and sent of the month (``YYYY-MM``) so far."""
        params = {"customer_id": customer_id, "period": period}
        debts = {r["event_name"]: r["debt"] for r in self._unit.db().all(_MONTH_STATES, params)}
        events = {r["event_name"]: r for r in self._unit.db().all(_MONTH_EVENTS, params)}
        return [
            MeterUsage(
                name,
                int(events[name]["planned"]) if name in events else 0,
                int(events[name]["sent"]) if name in events else 0,
                debts.get(name, 0),
            )
            for name in sorted(set(debts) | set(events))
        ]

    def credit_grant(self, customer_id: str, bucket_id: str) -> str:
        """The bucket's credit grant id; empty while none is made (or none is needed)."""
        row = self._unit.db().first(_GRANT, {"customer_id": customer_id, "bucket_id": bucket_id})
        return "" if row is None else row["stripe_credit_grant_id"] or ""
