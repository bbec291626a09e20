"""Read-only summaries of the outbox: the backlog gauges and what reconciliation compares.

Nothing here writes; each function answers one question of the reporter's
monitoring (``backlog``), of reconciliation (usage per period, bucket grants)
or of ``stripe setup`` (the outcome types that need a meter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, true
from sqlalchemy.engine import Connection

from rating_service.domain.postings import is_unit_asset, outcome_type_of, usage_outcomes
from rating_service.domain.usage import meter_event_name
from rating_service.ledger.codec import from_micros
from rating_service.ledger.outbox._credit_grants import GRANT_UNITS
from rating_service.ledger.outbox._cursors import CURSOR_SEQUENCE, CUSTOMERS_WITH_CURSOR, REPORTABLE
from rating_service.ledger.repositories.rate_cards import version_from_row
from rating_service.ledger.schema import (
    balances,
    buckets,
    customers,
    rate_card_versions,
    stripe_cursors,
    stripe_meter_events,
    stripe_usage_periods,
)


@dataclass(frozen=True)
class Backlog:
    entries_unplanned: int
    events_unsent: int
    grants_uncreated: int
    parked: dict[str, str]


def backlog(conn: Connection) -> Backlog:
    """What is not yet in Stripe: for the gauges, and ``report --once``'s exit status."""
    unplanned = conn.execute(
        select(func.coalesce(func.sum(customers.c.head_sequence - CURSOR_SEQUENCE), 0))
        .select_from(CUSTOMERS_WITH_CURSOR)
        .where(REPORTABLE, customers.c.head_sequence > CURSOR_SEQUENCE)
    ).scalar_one()
    unsent = conn.execute(
        select(func.count()).where(stripe_meter_events.c.sent_at.is_(None))
    ).scalar_one()
    uncreated = conn.execute(
        select(func.count())
        .select_from(
            buckets.join(customers, customers.c.customer_id == buckets.c.customer_id).outerjoin(
                stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id
            )
        )
        .where(
            or_(
                buckets.c.stripe_credit_grant_id.is_(None),
                buckets.c.stripe_grant_stale == true(),
            ),
            REPORTABLE,
        )
    ).scalar_one()
    parked = {
        r.customer_id: r.parked_error
        for r in conn.execute(
            select(stripe_cursors.c.customer_id, stripe_cursors.c.parked_error).where(
                stripe_cursors.c.parked_error.is_not(None)
            )
        )
    }
    return Backlog(int(unplanned), int(unsent), int(uncreated), parked)


@dataclass(frozen=True)
class PeriodUsage:
    """One customer's usage of one meter in one period, as the ledger and the reporter see it."""

    customer_id: str
    stripe_customer_id: str
    event_name: str
    period: str
    ledger_net: int
    planned: int
    debt: int
    unsent: int
    credited: int = 0
    """Units owed back as credit grants once the period closed."""


def usage_by_period(conn: Connection, meters: Mapping[str, str]) -> list[PeriodUsage]:
    """Every (customer, meter, period) the reporter has planned, beside the ledger's net usage."""
    rows = conn.execute(
        select(stripe_usage_periods, customers.c.stripe_customer_id)
        .join(customers, customers.c.customer_id == stripe_usage_periods.c.customer_id)
        .where(customers.c.stripe_customer_id != "")
        .order_by(
            stripe_usage_periods.c.customer_id,
            stripe_usage_periods.c.period,
            stripe_usage_periods.c.event_name,
        )
    ).all()
    result = []
    for r in rows:
        period_balances = conn.execute(
            select(balances.c.asset, balances.c.amount).where(
                balances.c.customer_id == r.customer_id,
                balances.c.account == usage_outcomes(r.period),
            )
        )
        net = sum(
            amount
            for asset, amount in period_balances
            if is_unit_asset(asset)
            and meter_event_name(outcome_type_of(asset), meters) == r.event_name
        )
        unsent = conn.execute(
            select(func.coalesce(func.sum(stripe_meter_events.c.value), 0)).where(
                stripe_meter_events.c.customer_id == r.customer_id,
                stripe_meter_events.c.event_name == r.event_name,
                stripe_meter_events.c.period == r.period,
                stripe_meter_events.c.sent_at.is_(None),
            )
        ).scalar_one()
        result.append(
            PeriodUsage(
                r.customer_id,
                r.stripe_customer_id,
                r.event_name,
                r.period,
                net,
                r.planned,
                r.debt,
                int(unsent),
                r.credited,
            )
        )
    return result


@dataclass(frozen=True)
class BucketGrant:
    customer_id: str
    stripe_customer_id: str
    bucket_id: str
    grant_id: str | None
    amount_nanos: int
    """What the grant must be worth: its units at the bucket's unit price."""
    currency: str
    valid_from: datetime
    valid_until: datetime
    version: int = 1
    units: int = 0
    """The bucket's quantity less what manual draws and a void took (``domain.grants``)."""
    stale: bool = False
    """Older grants of the bucket may still be live in Stripe (being voided)."""


def bucket_grants(conn: Connection) -> list[BucketGrant]:
    """Every bucket of a customer known to Stripe, with the grant stored beside it."""
    rows = conn.execute(
        select(buckets, GRANT_UNITS.label("grant_units"), customers.c.stripe_customer_id)
        .join(customers, customers.c.customer_id == buckets.c.customer_id)
        .where(customers.c.stripe_customer_id != "")
        .order_by(buckets.c.customer_id, buckets.c.bucket_id)
    )
    return [
        BucketGrant(
            r.customer_id,
            r.stripe_customer_id,
            r.bucket_id,
            r.stripe_credit_grant_id,
            int(r.unit_price_nanos) * int(r.grant_units),
            r.currency,
            from_micros(r.valid_from),
            from_micros(r.valid_until),
            int(r.stripe_grant_version),
            int(r.grant_units),
            bool(r.stripe_grant_stale),
        )
        for r in rows
    ]


def priced_outcome_types(conn: Connection) -> set[str]:
    """Every outcome type any rate-card version prices (rate cards are few and small)."""
    return {
        outcome_type
        for row in conn.execute(select(rate_card_versions))
        for outcome_type in version_from_row(row._mapping).prices
    }
