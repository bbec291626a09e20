"""Planning a customer's new ledger range into meter events: read on a snapshot, saved once.

``plan_range`` reads everything a plan needs on a reader's snapshot and
returns the plan's writes (``RangePlan``) without holding the writer; the
ledger range, the meter events' identifiers and the usage states all come
from that snapshot. ``save_plan`` then writes them through the writer as one
short job, guarded: it saves only when the cursor is where the plan started
and the usage states and carrier events it read are unchanged, and moves the
cursor in the same transaction. So a range is planned exactly once: a plan made
on a stale snapshot (another plan saved first, a cancel refused meanwhile) is
refused, writes nothing, and the reporter plans again from the new cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from rating_service.domain.postings import EntryKind, period_of
from rating_service.domain.usage import (
    Carrier,
    PeriodState,
    plan_usage,
    replacement_identifier,
    take_reversals,
    usage_facts,
)
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.outbox._carriers import (
    CarrierSeen,
    carrier_seen,
    carriers_now,
    carriers_of,
)
from rating_service.ledger.outbox._credit_grants import grant_reductions_of, lower_grants
from rating_service.ledger.schema import (
    ledger_entries,
    stripe_cursors,
    stripe_meter_events,
    stripe_usage_periods,
)

_DIALECTS = {"postgresql": postgresql, "sqlite": sqlite}

StateKey = tuple[str, str]
"""(meter event name, period)."""


@dataclass(frozen=True)
class _Undo:
    """Units taken out of a carrier event: the value it keeps, and how."""

    identifier: str
    remainder: int
    pending_replacement: bool
    """Fold into the replacement (not yet sendable); else cancel it and plan a replacement."""
    replacement: Mapping[str, Any] | None
    """The replacement's row, when a cancel leaves a remainder."""


@dataclass(frozen=True)
class RangePlan:
    """One customer's range after ``after``, planned on a snapshot: what saving it writes."""

    customer_id: str
    after: int
    """The cursor the plan started from: it is saved only if the cursor is still there."""
    last: int
    """The last sequence planned: the cursor moves there."""
    entries: int
    now: datetime
    states_seen: Mapping[StateKey, PeriodState]
    carriers_seen: Mapping[str, CarrierSeen]
    undo: tuple[_Undo, ...]
    events: tuple[Mapping[str, Any], ...]
    states: Mapping[StateKey, PeriodState]
    lowered_grants: Mapping[str, int]
    """Bucket id -> units its grant loses (manual draws and voids in the range)."""


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


def cursor_of(conn: Connection, customer_id: str, *, lock: bool = False) -> int:
    """The last sequence planned for the customer (0 before the first plan)."""
    query = select(stripe_cursors.c.sequence).where(stripe_cursors.c.customer_id == customer_id)
    return conn.execute(query.with_for_update() if lock else query).scalar() or 0


def plan_range(
    conn: Connection,
    customer_id: str,
    *,
    meters: Mapping[str, str],
    window: timedelta,
    now: datetime,
    limit: int = 5000,
) -> RangePlan | None:
    """Plan the next ``limit`` entries after the cursor (reads only); None when there are none.

    Meter events, usage states, the undoing of carriers the range's reversals
    take out of, and the credit grant versions the range lowers (manual draws,
    voids): all saved by ``save_plan`` in one transaction with the cursor.
    """
    cursor = cursor_of(conn, customer_id)
    # Only the columns planning needs: loading whole entries with their
    # postings cost four fifths of a drain.
    found = conn.execute(
        _PLAN_ENTRIES, {"customer_id": customer_id, "after": cursor, "limit": limit}
    ).all()
    if not found:
        return None
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
    seen = _load_states(conn, customer_id, {period_of(at) for _, at in touched})
    states = dict(seen)
    reversed_outcomes = {
        r.sequence: r.outcome_id
        for r in found
        if r.kind == EntryKind.OUTCOME_REVERSED.value and r.outcome_id
    }
    carriers, rows = carriers_of(conn, customer_id, facts, reversed_outcomes, cursor, window)
    facts, taken = take_reversals(facts, carriers, now)
    micros = to_micros(now)
    undo: list[_Undo] = []
    for identifier, units in taken.items():
        row = rows[identifier]
        key = (row.event_name, row.period)
        state = states.get(key, PeriodState())
        states[key] = replace(state, planned=state.planned - units)
        carrier = carriers[_any_sequence(carriers, identifier)]
        undo.append(_undo(row, units, carrier.pending_replacement, micros))
    plan = plan_usage(customer_id, facts, states, window)
    return RangePlan(
        customer_id=customer_id,
        after=cursor,
        last=found[-1].sequence,
        entries=len(found),
        now=now,
        states_seen=seen,
        carriers_seen={identifier: carrier_seen(row) for identifier, row in rows.items()},
        undo=tuple(undo),
        events=tuple(
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
        ),
        states=plan.states,
        lowered_grants=grant_reductions_of(
            conn, customer_id, [(r.sequence, EntryKind(r.kind)) for r in found]
        ),
    )


def save_plan(conn: Connection, plan: RangePlan) -> bool:
    """Write ``plan`` and move the cursor past its range, or nothing if it is stale.

    Stale: the cursor moved since the plan's snapshot, or a usage state or a
    carrier event it read changed; the caller plans again. The cursor's row is
    locked first (PostgreSQL), so two saves of one range cannot both pass.
    """
    customer_id = plan.customer_id
    if cursor_of(conn, customer_id, lock=True) != plan.after:
        return False
    if _load_states(conn, customer_id, {p for _, p in plan.states_seen} | _periods(plan)) != dict(
        plan.states_seen
    ):
        return False
    if carriers_now(conn, list(plan.carriers_seen)) != dict(plan.carriers_seen):
        return False
    micros = to_micros(plan.now)
    for undo in plan.undo:
        this = stripe_meter_events.c.identifier == undo.identifier
        if undo.pending_replacement:
            if undo.remainder:
                conn.execute(update(stripe_meter_events).where(this).values(value=undo.remainder))
            else:
                conn.execute(delete(stripe_meter_events).where(this))
            continue
        conn.execute(update(stripe_meter_events).where(this).values(cancel_planned_at=micros))
        if undo.replacement is not None:
            conn.execute(stripe_meter_events.insert().values(dict(undo.replacement)))
    if plan.events:
        conn.execute(stripe_meter_events.insert(), [dict(e) for e in plan.events])
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
    lower_grants(conn, customer_id, plan.lowered_grants)
    _move_cursor(conn, plan, micros)
    return True


def _periods(plan: RangePlan) -> set[str]:
    """The periods whose states the plan writes (all of them read on its snapshot)."""
    return {period for _, period in plan.states}


def _move_cursor(conn: Connection, plan: RangePlan, micros: int) -> None:
    moved = conn.execute(
        update(stripe_cursors)
        .where(stripe_cursors.c.customer_id == plan.customer_id)
        .values(sequence=plan.last, updated_at=micros)
    ).rowcount
    if not moved:
        conn.execute(
            stripe_cursors.insert().values(
                customer_id=plan.customer_id, sequence=plan.last, updated_at=micros
            )
        )


def _upsert(conn: Connection, table: Table, key: list[str], values: dict[str, object]) -> None:
    """Insert ``values``, or update the row with the same ``key`` (both dialects say ON CONFLICT)."""
    statement = _DIALECTS[conn.dialect.name].insert(table)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=key, set_={k: statement.excluded[k] for k in values if k not in key}
        ),
        values,
    )


def _load_states(
    conn: Connection, customer_id: str, periods: set[str]
) -> dict[StateKey, PeriodState]:
    if not periods:
        return {}
    rows = conn.execute(
        select(stripe_usage_periods).where(
            stripe_usage_periods.c.customer_id == customer_id,
            stripe_usage_periods.c.period.in_(sorted(periods)),
        )
    )
    return {(r.event_name, r.period): PeriodState(r.planned, r.debt, r.credited) for r in rows}


def _any_sequence(carriers: Mapping[int, Carrier], identifier: str) -> int:
    return next(s for s, c in carriers.items() if c.identifier == identifier)


def _undo(row: Row[Any], units: int, pending_replacement: bool, micros: int) -> _Undo:
    """Take ``units`` out of a carrier: fold them into a pending replacement, or cancel it.

    Cancelling plans the replacement of its remainder in the same transaction;
    the replacement is sent once Stripe confirmed the cancel (``unsent_events``).
    """
    remainder = row.value - units
    replacement = None
    if not pending_replacement and remainder:
        replacement = {
            "identifier": replacement_identifier(row.customer_id, row.identifier, remainder),
            "customer_id": row.customer_id,
            "event_name": row.event_name,
            "period": row.period,
            "window_start": row.window_start,
            "value": remainder,
            "first_sequence": row.first_sequence,
            "last_sequence": row.last_sequence,
            "planned_at": micros,
            "replaces": row.identifier,
        }
    return _Undo(row.identifier, remainder, pending_replacement, replacement)
