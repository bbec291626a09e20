"""The meter event carrying a reversed outcome's settlement, and what a plan saw of it.

A reversal of usage already planned is taken out of the event that carried
its outcome (``domain.usage.take_reversals``); a plan is saved only if the
carriers it read are as it saw them (``_range_plans.save_plan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, select
from sqlalchemy.engine import Connection

from rating_service.domain.usage import Carrier, UsageFact, window_of
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.schema import ledger_entries, outcomes, stripe_meter_events

CarrierSeen = tuple[int, int | None, int | None, int | None, int | None]
"""What a plan relied on of a carrier event: value, sent, cancel planned, cancelled, and
whether the event it replaces is cancelled."""

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
_WITH_REPLACED = select(
    stripe_meter_events, _REPLACED.c.cancelled_at.label("replaced_cancelled_at")
).outerjoin(_REPLACED, _REPLACED.c.identifier == stripe_meter_events.c.replaces)
_CARRIER = _WITH_REPLACED.where(
    stripe_meter_events.c.customer_id == bindparam("customer_id"),
    stripe_meter_events.c.event_name == bindparam("event_name"),
    stripe_meter_events.c.last_sequence >= bindparam("sequence"),
    stripe_meter_events.c.first_sequence <= bindparam("sequence"),
    stripe_meter_events.c.window_start == bindparam("window_start"),
    stripe_meter_events.c.cancel_planned_at.is_(None),
)


def carrier_seen(row: Row[Any]) -> CarrierSeen:
    return (
        int(row.value),
        row.sent_at,
        row.cancel_planned_at,
        row.cancelled_at,
        row.replaced_cancelled_at,
    )


def carriers_now(conn: Connection, identifiers: list[str]) -> dict[str, CarrierSeen]:
    if not identifiers:
        return {}
    rows = conn.execute(
        _WITH_REPLACED.where(stripe_meter_events.c.identifier.in_(identifiers))
    ).all()
    return {row.identifier: carrier_seen(row) for row in rows}


def carriers_of(
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
