"""The reporter's side of the database: cursors, planned meter events, grants, parking.

The ledger is the outbox: each customer's head sequence says where there is
work, and ``stripe_cursors.sequence`` how far it has been planned. Planning a
range (its meter events, its usage states, the cursor) is one transaction, so
a range is planned exactly once; sending is then retried until Stripe has it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from rating_service.domain.buckets import BucketSource
from rating_service.domain.postings import EntryKind
from rating_service.domain.usage import PeriodState, plan_usage, usage_facts
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.schema import (
    balances,
    buckets,
    customers,
    ledger_entries,
    stripe_cursors,
    stripe_meter_events,
    stripe_usage_periods,
)

_DIALECTS = {"postgresql": postgresql, "sqlite": sqlite}


@dataclass(frozen=True)
class CustomerWork:
    customer_id: str
    stripe_customer_id: str
    cursor: int
    head: int
    verified: bool


@dataclass(frozen=True)
class UnsentEvent:
    identifier: str
    customer_id: str
    stripe_customer_id: str
    verified: bool
    event_name: str
    value: int
    window_start: datetime


@dataclass(frozen=True)
class GrantToCreate:
    customer_id: str
    stripe_customer_id: str
    verified: bool
    bucket_id: str
    outcome_type: str
    quantity: int
    unit_price_nanos: int
    currency: str
    valid_from: datetime
    valid_until: datetime
    source: BucketSource


@dataclass(frozen=True)
class Backlog:
    entries_unplanned: int
    events_unsent: int
    grants_uncreated: int
    parked: dict[str, str]


_cursor_seq = func.coalesce(stripe_cursors.c.sequence, 0)
_reportable = and_(customers.c.stripe_customer_id != "", stripe_cursors.c.parked_error.is_(None))
_with_cursor = customers.outerjoin(
    stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id
)
_verified = func.coalesce(stripe_cursors.c.verified_stripe_id, "") == customers.c.stripe_customer_id


def customers_with_work(conn: Connection, limit: int) -> list[CustomerWork]:
    """Reportable customers whose ledger has moved past their cursor."""
    rows = conn.execute(
        select(
            customers.c.customer_id,
            customers.c.stripe_customer_id,
            customers.c.head_sequence,
            _cursor_seq.label("cursor"),
            _verified.label("verified"),
        )
        .select_from(_with_cursor)
        .where(_reportable, customers.c.head_sequence > _cursor_seq)
        .order_by(customers.c.customer_id)
        .limit(limit)
    )
    return [
        CustomerWork(
            r.customer_id, r.stripe_customer_id, r.cursor, r.head_sequence, bool(r.verified)
        )
        for r in rows
    ]


def _upsert(conn: Connection, table: Table, key: list[str], values: dict[str, object]) -> None:
    statement = _DIALECTS[conn.dialect.name].insert(table)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=key, set_={k: statement.excluded[k] for k in values if k not in key}
        ),
        values,
    )


_PLAN_ENTRIES = (
    select(
        ledger_entries.c.sequence,
        ledger_entries.c.kind,
        ledger_entries.c.outcome_type,
        ledger_entries.c.occurred_at,
    )
    .where(
        ledger_entries.c.customer_id == bindparam("customer_id"),
        ledger_entries.c.sequence > bindparam("after"),
    )
    .order_by(ledger_entries.c.sequence)
    .limit(bindparam("limit"))
)


def plan_customer(
    conn: Connection,
    customer_id: str,
    *,
    meters: Mapping[str, str],
    window: timedelta,
    now: datetime,
    limit: int = 5000,
) -> int:
    """Plan the next ``limit`` entries after the cursor; returns how many were planned."""
    cursor = (
        conn.execute(
            select(stripe_cursors.c.sequence).where(stripe_cursors.c.customer_id == customer_id)
        ).scalar()
        or 0
    )
    # Only the four columns planning needs: loading whole entries with their
    # postings cost four fifths of a drain.
    found = conn.execute(
        _PLAN_ENTRIES, {"customer_id": customer_id, "after": cursor, "limit": limit}
    ).all()
    if not found:
        return 0
    facts = [
        fact
        for r in found
        if (
            fact := usage_facts(
                EntryKind(r.kind), r.sequence, r.outcome_type, from_micros(r.occurred_at), meters
            )
        )
    ]
    touched = {(f.event_name, f.at) for f in facts}
    states = _load_states(conn, customer_id, {(name, f"{at:%Y-%m}") for name, at in touched})
    plan = plan_usage(customer_id, facts, states, window)
    micros = to_micros(now)
    if plan.events:
        conn.execute(
            stripe_meter_events.insert(),
            [
                {
                    "identifier": e.identifier,
                    "customer_id": customer_id,
                    "event_name": e.event_name,
                    "period": e.period,
                    "window_start": to_micros(e.window_start),
                    "value": e.value,
                    "first_sequence": e.first_sequence,
                    "last_sequence": e.last_sequence,
                    "planned_at": micros,
                }
                for e in plan.events
            ],
        )
    for (event_name, period), state in plan.states.items():
        _upsert(
            conn,
            stripe_usage_periods,
            ["customer_id", "event_name", "period"],
            {
                "customer_id": customer_id,
                "event_name": event_name,
                "period": period,
                "planned": state.planned,
                "debt": state.debt,
            },
        )
    _upsert_cursor(conn, customer_id, now, sequence=found[-1].sequence)
    return len(found)


def _load_states(
    conn: Connection, customer_id: str, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], PeriodState]:
    if not keys:
        return {}
    rows = conn.execute(
        select(stripe_usage_periods).where(
            stripe_usage_periods.c.customer_id == customer_id,
            stripe_usage_periods.c.period.in_({period for _, period in keys}),
        )
    )
    return {(r.event_name, r.period): PeriodState(r.planned, r.debt) for r in rows}


def unsent_events(conn: Connection, limit: int, event_names: Iterable[str]) -> list[UnsentEvent]:
    """Planned events not yet in Stripe, for meters that exist (Stripe drops the others)."""
    rows = conn.execute(
        select(
            stripe_meter_events,
            customers.c.stripe_customer_id,
            _verified.label("verified"),
        )
        .select_from(
            stripe_meter_events.join(
                customers, customers.c.customer_id == stripe_meter_events.c.customer_id
            ).outerjoin(stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id)
        )
        .where(
            stripe_meter_events.c.sent_at.is_(None),
            stripe_meter_events.c.event_name.in_(list(event_names)),
            _reportable,
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
    return list(
        conn.execute(
            select(stripe_meter_events.c.event_name)
            .where(stripe_meter_events.c.sent_at.is_(None))
            .distinct()
        ).scalars()
    )


_MARK_SENT = (
    update(stripe_meter_events)
    .where(stripe_meter_events.c.identifier == bindparam("id"))
    .values(sent_at=bindparam("at"))
)


def mark_sent(conn: Connection, identifiers: list[str], now: datetime) -> None:
    if identifiers:
        conn.execute(_MARK_SENT, [{"id": i, "at": to_micros(now)} for i in identifiers])


def grants_to_create(conn: Connection, limit: int) -> list[GrantToCreate]:
    """Buckets the cursor has passed that have no credit grant yet."""
    rows = conn.execute(
        select(buckets, customers.c.stripe_customer_id, _verified.label("verified"))
        .select_from(
            buckets.join(customers, customers.c.customer_id == buckets.c.customer_id).join(
                stripe_cursors, stripe_cursors.c.customer_id == customers.c.customer_id
            )
        )
        .where(
            buckets.c.stripe_credit_grant_id.is_(None),
            buckets.c.created_sequence <= stripe_cursors.c.sequence,
            _reportable,
        )
        .order_by(buckets.c.customer_id, buckets.c.created_sequence)
        .limit(limit)
    )
    return [
        GrantToCreate(
            customer_id=r.customer_id,
            stripe_customer_id=r.stripe_customer_id,
            verified=bool(r.verified),
            bucket_id=r.bucket_id,
            outcome_type=r.outcome_type,
            quantity=r.quantity,
            unit_price_nanos=r.unit_price_nanos,
            currency=r.currency,
            valid_from=from_micros(r.valid_from),
            valid_until=from_micros(r.valid_until),
            source=BucketSource(r.source),
        )
        for r in rows
    ]


def record_grant(conn: Connection, customer_id: str, bucket_id: str, grant_id: str) -> None:
    """Store the grant id beside the bucket (empty: the bucket needs no grant)."""
    conn.execute(
        update(buckets)
        .where(buckets.c.customer_id == customer_id, buckets.c.bucket_id == bucket_id)
        .values(stripe_credit_grant_id=grant_id)
    )


def mark_verified(
    conn: Connection, customer_id: str, stripe_customer_id: str, now: datetime
) -> None:
    _upsert_cursor(conn, customer_id, now, verified_stripe_id=stripe_customer_id)


def park(conn: Connection, customer_id: str, error: str, now: datetime) -> None:
    _upsert_cursor(conn, customer_id, now, parked_error=error[:2000], parked_at=to_micros(now))


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


def _upsert_cursor(conn: Connection, customer_id: str, now: datetime, **values: object) -> None:
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


def backlog(conn: Connection) -> Backlog:
    unplanned = conn.execute(
        select(func.coalesce(func.sum(customers.c.head_sequence - _cursor_seq), 0))
        .select_from(_with_cursor)
        .where(_reportable, customers.c.head_sequence > _cursor_seq)
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
        .where(buckets.c.stripe_credit_grant_id.is_(None), _reportable)
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
        account = f"usage:{r.period}:outcomes"
        net = sum(
            amount
            for asset, amount in conn.execute(
                select(balances.c.asset, balances.c.amount).where(
                    balances.c.customer_id == r.customer_id, balances.c.account == account
                )
            )
            if asset.startswith("unit:") and meters.get(asset[5:], asset[5:]) == r.event_name
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
    currency: str
    valid_from: datetime
    valid_until: datetime


def bucket_grants(conn: Connection) -> list[BucketGrant]:
    """Every bucket of a customer known to Stripe, with the grant stored beside it."""
    rows = conn.execute(
        select(buckets, customers.c.stripe_customer_id)
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
            r.unit_price_nanos * r.quantity,
            r.currency,
            from_micros(r.valid_from),
            from_micros(r.valid_until),
        )
        for r in rows
    ]
