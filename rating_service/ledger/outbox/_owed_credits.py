"""What closed months owe back: planning each debt into a credit, and the grant once made.

A month closes at its end plus the invoice finalization grace
(``domain.usage.month_closes_at``). Planning moves a closed month's debt to
``credited`` and adds a credit of exactly those units, priced at the meter's
rate-card price at the month's end, in one transaction; creating the grant is
then retried until Stripe has it (``record_owed_credit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from rating_service.domain.usage import meter_event_name, month_closes_at
from rating_service.ledger.codec import to_micros
from rating_service.ledger.outbox._cursors import REPORTABLE, VERIFIED
from rating_service.ledger.repositories.rate_cards import version_from_row
from rating_service.ledger.schema import (
    customers,
    rate_card_versions,
    stripe_cursors,
    stripe_owed_credits,
    stripe_usage_periods,
)

_MICROSECOND = timedelta(microseconds=1)


def close_months(
    conn: Connection, now: datetime, grace: timedelta, meters: Mapping[str, str]
) -> int:
    """Turn the debt of every closed month into a credit to create; returns how many."""
    owing = conn.execute(
        select(stripe_usage_periods, customers.c.rate_card_id)
        .join(customers, customers.c.customer_id == stripe_usage_periods.c.customer_id)
        .where(stripe_usage_periods.c.debt > 0)
    ).all()
    planned = 0
    for row in owing:
        if month_closes_at(row.period, grace) > now:
            continue
        price, currency = meter_price(conn, row.rate_card_id, row.event_name, row.period, meters)
        number = conn.execute(
            select(func.coalesce(func.max(stripe_owed_credits.c.number), 0)).where(
                stripe_owed_credits.c.customer_id == row.customer_id,
                stripe_owed_credits.c.event_name == row.event_name,
                stripe_owed_credits.c.period == row.period,
            )
        ).scalar_one()
        conn.execute(
            stripe_owed_credits.insert().values(
                customer_id=row.customer_id,
                event_name=row.event_name,
                period=row.period,
                number=int(number) + 1,
                units=row.debt,
                unit_price_nanos=price,
                currency=currency,
                planned_at=to_micros(now),
            )
        )
        conn.execute(
            update(stripe_usage_periods)
            .where(
                stripe_usage_periods.c.customer_id == row.customer_id,
                stripe_usage_periods.c.event_name == row.event_name,
                stripe_usage_periods.c.period == row.period,
            )
            .values(debt=0, credited=stripe_usage_periods.c.credited + row.debt)
        )
        planned += 1
    return planned


def meter_price(
    conn: Connection, rate_card_id: str, event_name: str, period: str, meters: Mapping[str, str]
) -> tuple[int, str]:
    """The meter's unit price at the month's last microsecond (Stripe bills a meter at one price).

    Outcome types sharing a meter are priced by the first of them, by name;
    free (0) when the card prices none of them.
    """
    last = month_closes_at(period, timedelta(0)) - _MICROSECOND
    row = conn.execute(
        select(rate_card_versions)
        .where(
            rate_card_versions.c.rate_card_id == rate_card_id,
            rate_card_versions.c.effective_from <= to_micros(last),
        )
        .order_by(rate_card_versions.c.effective_from.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, "USD"
    version = version_from_row(row._mapping)
    for outcome_type in sorted(version.prices):
        if meter_event_name(outcome_type, meters) == event_name:
            return version.prices[outcome_type].unit_price.nanos, version.currency
    return 0, version.currency


@dataclass(frozen=True)
class OwedCredit:
    customer_id: str
    stripe_customer_id: str
    verified: bool
    event_name: str
    period: str
    number: int
    units: int
    unit_price_nanos: int
    currency: str
    grant_id: str | None


def _credits(conn: Connection, *conditions: object, limit: int | None = None) -> list[OwedCredit]:
    query = (
        select(stripe_owed_credits, customers.c.stripe_customer_id, VERIFIED.label("verified"))
        .select_from(
            stripe_owed_credits.join(
                customers, customers.c.customer_id == stripe_owed_credits.c.customer_id
            ).outerjoin(stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id)
        )
        .where(customers.c.stripe_customer_id != "", *conditions)  # type: ignore[arg-type]
        .order_by(
            stripe_owed_credits.c.customer_id,
            stripe_owed_credits.c.period,
            stripe_owed_credits.c.event_name,
            stripe_owed_credits.c.number,
        )
        .limit(limit)
    )
    return [
        OwedCredit(
            r.customer_id,
            r.stripe_customer_id,
            bool(r.verified),
            r.event_name,
            r.period,
            r.number,
            r.units,
            r.unit_price_nanos,
            r.currency,
            r.grant_id,
        )
        for r in conn.execute(query)
    ]


def owed_credits_to_create(conn: Connection, limit: int) -> list[OwedCredit]:
    """Credits planned whose grant Stripe does not have yet (reportable customers)."""
    return _credits(conn, stripe_owed_credits.c.grant_id.is_(None), REPORTABLE, limit=limit)


def owed_credits(conn: Connection) -> list[OwedCredit]:
    """Every owed-back credit, for reconciliation."""
    return _credits(conn)


def record_owed_credit(
    conn: Connection, customer_id: str, event_name: str, period: str, number: int, grant_id: str
) -> None:
    """Store the grant id (empty: the credit was worth nothing, a free outcome type)."""
    conn.execute(
        update(stripe_owed_credits)
        .where(
            stripe_owed_credits.c.customer_id == customer_id,
            stripe_owed_credits.c.event_name == event_name,
            stripe_owed_credits.c.period == period,
            stripe_owed_credits.c.number == number,
        )
        .values(grant_id=grant_id)
    )


def months_to_close(conn: Connection, now: datetime, grace: timedelta) -> bool:
    """Whether a month owing a debt has closed (``close_months`` has work); a read, so an
    idle pass asks the writer for nothing."""
    periods = conn.execute(
        select(stripe_usage_periods.c.period).where(stripe_usage_periods.c.debt > 0).distinct()
    ).scalars()
    return any(month_closes_at(period, grace) <= now for period in periods)
