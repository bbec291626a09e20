"""Meter events: planning each customer's new ledger range into them, and sending them.

Planning a range (its meter events, its usage states, the cursor) is one
transaction, so a range is planned exactly once; sending is then retried until
Stripe has it, and ``mark_sent`` records that it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from rating_service.domain.postings import EntryKind, period_of
from rating_service.domain.usage import PeriodState, plan_usage, usage_facts
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.outbox._cursors import REPORTABLE, VERIFIED, upsert_cursor
from rating_service.ledger.schema import (
    customers,
    ledger_entries,
    stripe_cursors,
    stripe_meter_events,
    stripe_usage_periods,
)

_DIALECTS = {"postgresql": postgresql, "sqlite": sqlite}


@dataclass(frozen=True)
class UnsentEvent:
    identifier: str
    customer_id: str
    stripe_customer_id: str
    verified: bool
    event_name: str
    value: int
    window_start: datetime


def _upsert(conn: Connection, table: Table, key: list[str], values: dict[str, object]) -> None:
    """Insert ``values``, or update the row with the same ``key`` (both dialects say ON CONFLICT)."""
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
    states = _load_states(conn, customer_id, {(name, period_of(at)) for name, at in touched})
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
    upsert_cursor(conn, customer_id, now, sequence=found[-1].sequence)
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
