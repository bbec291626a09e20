"""Read-only summaries of the outbox: the backlog gauges and what reconciliation compares.

Nothing here writes; each function answers one question of the reporter's
monitoring (``backlog``), of reconciliation (usage per period, bucket grants)
or of ``stripe setup`` (the outcome types that need a meter).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.engine import Connection

from rating_service.domain.postings import (
    EntryKind,
    is_unit_asset,
    outcome_type_of,
    period_of,
    usage_charged,
    usage_outcomes,
)
from rating_service.domain.usage import meter_event_name
from rating_service.ledger.codec import from_micros
from rating_service.ledger.grant_prices import GrantPrices
from rating_service.ledger.outbox._credit_grants import GRANT_UNITS
from rating_service.ledger.outbox._cursors import CURSOR_SEQUENCE, CUSTOMERS_WITH_CURSOR, REPORTABLE
from rating_service.ledger.outbox._owed_credits import meter_price
from rating_service.ledger.repositories.rate_cards import version_from_row
from rating_service.ledger.schema import (
    balances,
    buckets,
    customers,
    ledger_entries,
    outcomes,
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
    moved_out: int = 0
    """Units of this period Stripe counts in a later one (sent after its 35 days)."""
    moved_in: Mapping[str, int] = field(default_factory=dict)
    """Units of earlier periods (by period) Stripe counts in this one."""


@dataclass(frozen=True)
class _Periods:
    customer_id: str
    stripe_customer_id: str
    event_name: str
    period: str
    planned: int = 0
    debt: int = 0
    credited: int = 0


def _late_moves(conn: Connection) -> dict[tuple[str, str, str], dict[str, int]]:
    """(customer, meter, Stripe's period) -> {the ledger's period: units} of late events."""
    moves: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in conn.execute(
        select(
            stripe_meter_events.c.customer_id,
            stripe_meter_events.c.event_name,
            stripe_meter_events.c.period,
            stripe_meter_events.c.stripe_period,
            func.sum(stripe_meter_events.c.value).label("units"),
        )
        .where(
            stripe_meter_events.c.stripe_period.is_not(None),
            stripe_meter_events.c.cancelled_at.is_(None),
        )
        .group_by(
            stripe_meter_events.c.customer_id,
            stripe_meter_events.c.event_name,
            stripe_meter_events.c.period,
            stripe_meter_events.c.stripe_period,
        )
    ):
        key = (r.customer_id, r.event_name, r.stripe_period)
        moves.setdefault(key, {})[r.period] = int(r.units)
    return moves


def usage_by_period(conn: Connection, meters: Mapping[str, str]) -> list[PeriodUsage]:
    """Every (customer, meter, period) the reporter has planned or Stripe counts late usage in,
    beside the ledger's net usage."""
    found = conn.execute(
        select(stripe_usage_periods, customers.c.stripe_customer_id)
        .join(customers, customers.c.customer_id == stripe_usage_periods.c.customer_id)
        .where(customers.c.stripe_customer_id != "")
    ).all()
    periods = {
        (r.customer_id, r.event_name, r.period): _Periods(
            r.customer_id,
            r.stripe_customer_id,
            r.event_name,
            r.period,
            int(r.planned),
            int(r.debt),
            int(r.credited),
        )
        for r in found
    }
    moves = _late_moves(conn)
    stripe_ids = {r.customer_id: r.stripe_customer_id for r in found}
    for customer_id, event_name, period in moves:
        if (customer_id, event_name, period) not in periods and customer_id in stripe_ids:
            periods[customer_id, event_name, period] = _Periods(
                customer_id, stripe_ids[customer_id], event_name, period
            )
    moved_out: dict[tuple[str, str, str], int] = {}
    for (customer_id, event_name, _), by_period in moves.items():
        for period, units in by_period.items():
            key = (customer_id, event_name, period)
            moved_out[key] = moved_out.get(key, 0) + units
    rows = [periods[k] for k in sorted(periods, key=lambda k: (k[0], k[2], k[1]))]
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
        key = (r.customer_id, r.event_name, r.period)
        result.append(
            PeriodUsage(
                r.customer_id,
                r.stripe_customer_id,
                r.event_name,
                r.period,
                int(net),
                r.planned,
                r.debt,
                int(unsent),
                r.credited,
                moved_out.get(key, 0),
                moves.get(key, {}),
            )
        )
    return result


@dataclass(frozen=True)
class MonthBill:
    """What the ledger bills a customer for a month, and what Stripe's bill is built from."""

    customer_id: str
    period: str
    charged_nanos: Mapping[str, int]
    """The ledger's bill by currency: ``usage:<period>:charged`` (covered outcomes cost 0)."""
    covered_nanos: Mapping[str, int]
    """Outcomes of the month a bucket covered, net of reversals, at the price their grant
    pays per unit (the bucket's): what the grants take off Stripe's bill."""
    meter_prices: Mapping[str, tuple[int, str]]
    """Each meter's price (nanos, currency) at the month's end: what Stripe bills a unit at."""


def month_bill(
    conn: Connection,
    customer_id: str,
    period: str,
    event_names: Iterable[str],
    meters: Mapping[str, str],
) -> MonthBill:
    """The ledger's side of one customer's month, for reconciliation in money."""
    charged: dict[str, int] = {}
    for asset, amount in conn.execute(
        select(balances.c.asset, balances.c.amount).where(
            balances.c.customer_id == customer_id,
            balances.c.account == usage_charged(period),
        )
    ):
        if not is_unit_asset(asset):
            charged[asset] = charged.get(asset, 0) + int(amount)
    entry = ledger_entries
    covered: dict[str, int] = {}
    rows = conn.execute(
        select(
            entry.c.kind,
            entry.c.occurred_at,
            buckets.c.customer_id,
            buckets.c.outcome_type,
            buckets.c.valid_from,
            buckets.c.unit_price_nanos,
            buckets.c.currency,
        )
        .select_from(
            outcomes.join(
                buckets,
                and_(
                    buckets.c.customer_id == outcomes.c.customer_id,
                    buckets.c.bucket_id == outcomes.c.bucket_id,
                ),
            ).join(
                entry,
                and_(
                    entry.c.customer_id == outcomes.c.customer_id,
                    or_(
                        entry.c.sequence == outcomes.c.settle_sequence,
                        and_(
                            entry.c.sequence == outcomes.c.end_sequence,
                            entry.c.kind == EntryKind.OUTCOME_REVERSED.value,
                        ),
                    ),
                ),
            )
        )
        .where(outcomes.c.customer_id == customer_id, outcomes.c.bucket_id.is_not(None))
    )
    grant_prices = GrantPrices(conn)
    for r in rows:
        if period_of(from_micros(r.occurred_at)) != period:
            continue
        sign = -1 if r.kind == EntryKind.OUTCOME_REVERSED.value else 1
        covered[r.currency] = covered.get(r.currency, 0) + sign * grant_prices.of(r._mapping)
    rate_card_id = conn.execute(
        select(customers.c.rate_card_id).where(customers.c.customer_id == customer_id)
    ).scalar_one()
    prices = {
        name: meter_price(conn, rate_card_id, name, period, meters) for name in set(event_names)
    }
    return MonthBill(customer_id, period, charged, covered, prices)


@dataclass(frozen=True)
class BucketGrant:
    customer_id: str
    stripe_customer_id: str
    bucket_id: str
    grant_id: str | None
    amount_nanos: int
    """What the grant must be worth: its units at what the grant pays per unit
    (``GrantPrices``: the card's price when the bucket starts)."""
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
    prices = GrantPrices(conn)
    return [
        BucketGrant(
            r.customer_id,
            r.stripe_customer_id,
            r.bucket_id,
            r.stripe_credit_grant_id,
            prices.of(r._mapping) * int(r.grant_units),
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
