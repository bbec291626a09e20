"""Meter events: planning each customer's new ledger range into them, and sending them.

Planning a range (its meter events, its usage states, the cursor) is one
transaction, so a range is planned exactly once; sending is then retried until
Stripe has it, and ``mark_sent`` records that it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from rating_service.domain.postings import EntryKind, period_of
from rating_service.domain.usage import (
    Carrier,
    PeriodState,
    UsageFact,
    plan_usage,
    replacement_identifier,
    take_reversals,
    usage_facts,
    window_of,
)
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.outbox._credit_grants import plan_grant_versions
from rating_service.ledger.outbox._cursors import REPORTABLE, VERIFIED, upsert_cursor
from rating_service.ledger.schema import (
    customers,
    ledger_entries,
    outcomes,
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
        ledger_entries.c.outcome_id,
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
    """Plan the next ``limit`` entries after the cursor; returns how many were planned.

    Meter events, usage states, the credit grant versions the range lowers
    (manual draws, voids) and the cursor move in this one transaction.
    """
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
    reversed_outcomes = {
        r.sequence: r.outcome_id
        for r in found
        if r.kind == EntryKind.OUTCOME_REVERSED.value and r.outcome_id
    }
    carriers, rows = _carriers(conn, customer_id, facts, reversed_outcomes, cursor, window)
    facts, taken = take_reversals(facts, carriers, now)
    micros = to_micros(now)
    for identifier, units in taken.items():
        row = rows[identifier]
        key = (row.event_name, row.period)
        state = states.get(key, PeriodState())
        states[key] = replace(state, planned=state.planned - units)
        _undo(conn, row, units, carriers[_any_sequence(carriers, identifier)], micros)
    plan = plan_usage(customer_id, facts, states, window)
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
                "credited": state.credited,
            },
        )
    plan_grant_versions(conn, customer_id, [(r.sequence, EntryKind(r.kind)) for r in found])
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
    return {(r.event_name, r.period): PeriodState(r.planned, r.debt, r.credited) for r in rows}


_REPLACED = stripe_meter_events.alias("replaced")
_SETTLEMENTS = (
    select(outcomes.c.outcome_id, outcomes.c.settle_sequence, ledger_entries.c.occurred_at)
    .join(
        ledger_entries,
        and_(
            ledger_entries.c.customer_id == outcomes.c.customer_id,
            ledger_entries.c.sequence == outcomes.c.settle_sequence,
        ),
    )
    .where(
        outcomes.c.customer_id == bindparam("customer_id"),
        outcomes.c.outcome_id.in_(bindparam("outcome_ids", expanding=True)),
    )
)
_CARRIER = (
    select(stripe_meter_events, _REPLACED.c.cancelled_at.label("replaced_cancelled_at"))
    .outerjoin(_REPLACED, _REPLACED.c.identifier == stripe_meter_events.c.replaces)
    .where(
        stripe_meter_events.c.customer_id == bindparam("customer_id"),
        stripe_meter_events.c.event_name == bindparam("event_name"),
        stripe_meter_events.c.last_sequence >= bindparam("sequence"),
        stripe_meter_events.c.first_sequence <= bindparam("sequence"),
        stripe_meter_events.c.window_start == bindparam("window_start"),
        stripe_meter_events.c.cancel_planned_at.is_(None),
    )
)


def _carriers(
    conn: Connection,
    customer_id: str,
    facts: list[UsageFact],
    reversed_outcomes: Mapping[int, str],
    cursor: int,
    window: timedelta,
) -> tuple[dict[int, Carrier], dict[str, Row[Any]]]:
    """Each reversal's carrier: the live event of its outcome's settlement, planned earlier.

    A settlement is carried by the event of its meter and window whose range
    holds its sequence (ranges of one pass may interleave across windows, so
    the window is part of the question).
    """
    if not reversed_outcomes:
        return {}, {}
    settled = {
        r.outcome_id: (r.settle_sequence, from_micros(r.occurred_at))
        for r in conn.execute(
            _SETTLEMENTS,
            {"customer_id": customer_id, "outcome_ids": sorted(set(reversed_outcomes.values()))},
        )
        if r.settle_sequence is not None and r.settle_sequence <= cursor
    }
    names = {f.sequence: f.event_name for f in facts}
    carriers: dict[int, Carrier] = {}
    rows: dict[str, Row[Any]] = {}
    for sequence, outcome_id in reversed_outcomes.items():
        if outcome_id not in settled or sequence not in names:
            continue
        settle_sequence, settled_at = settled[outcome_id]
        row = conn.execute(
            _CARRIER,
            {
                "customer_id": customer_id,
                "event_name": names[sequence],
                "sequence": settle_sequence,
                "window_start": to_micros(window_of(settled_at, window)),
            },
        ).first()
        if row is None:
            continue
        rows[row.identifier] = row
        carriers[sequence] = Carrier(
            identifier=row.identifier,
            period=row.period,
            value=row.value,
            planned_at=from_micros(row.planned_at),
            sent=row.sent_at is not None,
            pending_replacement=(
                row.replaces is not None
                and row.sent_at is None
                and row.replaced_cancelled_at is None
            ),
        )
    return carriers, rows


def _any_sequence(carriers: Mapping[int, Carrier], identifier: str) -> int:
    return next(s for s, c in carriers.items() if c.identifier == identifier)


def _undo(conn: Connection, row: Row[Any], units: int, carrier: Carrier, micros: int) -> None:
    """Take ``units`` out of a carrier: fold them into a pending replacement, or cancel it.

    Cancelling plans the replacement of its remainder in the same transaction;
    the replacement is sent once Stripe confirmed the cancel (``unsent_events``).
    """
    remainder = row.value - units
    this = stripe_meter_events.c.identifier == row.identifier
    if carrier.pending_replacement:
        if remainder:
            conn.execute(update(stripe_meter_events).where(this).values(value=remainder))
        else:
            conn.execute(delete(stripe_meter_events).where(this))
        return
    conn.execute(update(stripe_meter_events).where(this).values(cancel_planned_at=micros))
    if remainder:
        conn.execute(
            stripe_meter_events.insert().values(
                identifier=replacement_identifier(row.customer_id, row.identifier, remainder),
                customer_id=row.customer_id,
                event_name=row.event_name,
                period=row.period,
                window_start=row.window_start,
                value=remainder,
                first_sequence=row.first_sequence,
                last_sequence=row.last_sequence,
                planned_at=micros,
                replaces=row.identifier,
            )
        )


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
