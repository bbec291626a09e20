"""Outcomes: one row per (customer, outcome id), kept forever for idempotency."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, select, text, tuple_, update
from sqlalchemy.sql import Executable

from rating_service.domain.commands import OutcomeState
from rating_service.domain.money import Money
from rating_service.domain.outcome_record import OutcomeEnd, StoredOutcome
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import RowLike
from rating_service.ledger.schema import outcomes

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

_KEY = and_(
    outcomes.c.customer_id == bindparam("customer_id"),
    outcomes.c.outcome_id == bindparam("outcome_id"),
)
_OUTCOME = select(outcomes).where(_KEY)
_LOOK_UP: dict[str, Executable] = {
    # One statement for a whole batch's keys, given as a JSON array of pairs.
    "sqlite": text(
        "SELECT outcomes.* FROM json_each(:keys) AS k JOIN outcomes"
        " ON outcomes.customer_id = json_extract(k.value, '$[0]')"
        " AND outcomes.outcome_id = json_extract(k.value, '$[1]')"
    ),
    "postgresql": select(outcomes).where(
        tuple_(outcomes.c.customer_id, outcomes.c.outcome_id).in_(bindparam("keys", expanding=True))
    ),
}
_KEY_OF_UPDATE = and_(  # an UPDATE's own bind names may not be its columns' names
    outcomes.c.customer_id == bindparam("b_customer_id"),
    outcomes.c.outcome_id == bindparam("b_outcome_id"),
)
_INSERT = outcomes.insert()
_SETTLE = (
    update(outcomes)
    .where(_KEY_OF_UPDATE)
    .values(state=OutcomeState.SETTLED.value, settle_sequence=bindparam("sequence"))
)
_END = (
    update(outcomes)
    .where(_KEY_OF_UPDATE)
    .values(
        state=bindparam("b_state"),
        end_sequence=bindparam("b_sequence"),
        end_fingerprint=bindparam("b_fingerprint"),
        end_units_returned=bindparam("b_units_returned"),
        end_refunded_nanos=bindparam("b_refunded_nanos"),
    )
)
_DUE = (
    select(outcomes.c.customer_id, outcomes.c.outcome_id)
    .where(
        outcomes.c.state == OutcomeState.PENDING.value, outcomes.c.settles_at <= bindparam("now")
    )
    .order_by(outcomes.c.settles_at)
    .limit(bindparam("limit"))
)
_PENDING_SETTLING = (
    select(
        outcomes.c.currency,
        func.count().label("outcomes"),
        func.coalesce(func.sum(outcomes.c.charged_nanos), 0).label("charged"),
    )
    .where(
        outcomes.c.customer_id == bindparam("customer_id"),
        outcomes.c.state == OutcomeState.PENDING.value,
        outcomes.c.settles_at < bindparam("end"),
    )
    .group_by(outcomes.c.currency)
)


def _row(outcome: StoredOutcome) -> dict[str, Any]:
    end = outcome.end
    return {
        "customer_id": outcome.customer_id,
        "outcome_id": outcome.outcome_id,
        "fingerprint": outcome.fingerprint,
        "outcome_type": outcome.outcome_type,
        "state": outcome.state.value,
        "recorded_state": outcome.recorded_state.value,
        "occurred_at": to_micros(outcome.occurred_at),
        "recorded_at": to_micros(outcome.recorded_at),
        "settles_at": None if outcome.settles_at is None else to_micros(outcome.settles_at),
        "bucket_id": outcome.bucket_id,
        "unit_price_nanos": outcome.unit_price.nanos,
        "charged_nanos": outcome.charged.nanos,
        "currency": outcome.unit_price.currency,
        "rate_card_version": to_micros(outcome.rate_card_version),
        "rate_card_id": outcome.rate_card_id,
        "attributes": outcome.attributes,
        "record_sequence": outcome.record_sequence,
        "settle_sequence": outcome.settle_sequence,
        "end_sequence": None if end is None else end.sequence,
        "end_fingerprint": None if end is None else end.fingerprint,
        "end_units_returned": None if end is None else end.units_returned,
        "end_refunded_nanos": None if end is None else end.refunded.nanos,
    }


def _outcome(row: RowLike) -> StoredOutcome:
    currency = row["currency"]
    settles_at = row["settles_at"]
    end_sequence = row["end_sequence"]
    return StoredOutcome(
        customer_id=row["customer_id"],
        outcome_id=row["outcome_id"],
        fingerprint=row["fingerprint"],
        outcome_type=row["outcome_type"],
        state=OutcomeState(row["state"]),
        recorded_state=OutcomeState(row["recorded_state"]),
        occurred_at=from_micros(row["occurred_at"]),
        recorded_at=from_micros(row["recorded_at"]),
        settles_at=None if settles_at is None else from_micros(settles_at),
        bucket_id=row["bucket_id"],
        unit_price=Money(currency, row["unit_price_nanos"]),
        charged=Money(currency, row["charged_nanos"]),
        rate_card_version=from_micros(row["rate_card_version"]),
        rate_card_id=row["rate_card_id"],
        attributes=row["attributes"],
        record_sequence=row["record_sequence"],
        settle_sequence=row["settle_sequence"],
        end=None
        if end_sequence is None
        else OutcomeEnd(
            end_sequence,
            row["end_fingerprint"],
            row["end_units_returned"],
            Money(currency, row["end_refunded_nanos"]),
        ),
    )


class Outcomes:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        self._known: dict[tuple[str, str], RowLike | None] = {}
        """Stored rows (None: not stored) that ``look_up`` read for this batch, until changed."""

    def look_up(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read these (customer, outcome id) keys in one statement, for the ``get`` to come:
        a batch of new outcomes asks once instead of once per outcome."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return
        params: dict[str, Any] = (
            {"keys": json.dumps(wanted)}
            if self._unit.dialect == "sqlite"
            else {"keys": [tuple(k) for k in wanted]}
        )
        known = self._known
        for key in wanted:
            known[key] = None
        for row in self._unit.sql.all(_LOOK_UP[self._unit.dialect], params):
            known[(row["customer_id"], row["outcome_id"])] = row

    def get(self, customer_id: str, outcome_id: str) -> StoredOutcome | None:
        """The outcome, staged by this batch or stored."""
        key = (customer_id, outcome_id)
        staged = self._unit.staged
        row: RowLike | None = None if staged is None else staged.staged_row(_INSERT, key)
        if row is None:
            if key in self._known:
                row = self._known[key]
            else:
                row = self._unit.sql.first(
                    _OUTCOME, {"customer_id": customer_id, "outcome_id": outcome_id}
                )
        return None if row is None else _outcome(row)

    def add(self, outcome: StoredOutcome) -> None:
        """Stage a new outcome (its key must not exist: the caller looked)."""
        staged = self._unit.staged
        assert staged is not None, "outcomes are added in a write"
        key = (outcome.customer_id, outcome.outcome_id)
        self._known.pop(key, None)  # once written out, the database has it
        staged.add_row(_INSERT, key, _row(outcome))

    def save_settled(self, outcome: StoredOutcome) -> None:
        assert outcome.settle_sequence is not None
        self._known.pop((outcome.customer_id, outcome.outcome_id), None)
        self._unit.db_write().many(
            _SETTLE,
            [
                {
                    "b_customer_id": outcome.customer_id,
                    "b_outcome_id": outcome.outcome_id,
                    "sequence": outcome.settle_sequence,
                }
            ],
        )

    def save_end(self, outcome: StoredOutcome) -> None:
        end = outcome.end
        assert end is not None
        self._known.pop((outcome.customer_id, outcome.outcome_id), None)
        self._unit.db_write().many(
            _END,
            [
                {
                    "b_customer_id": outcome.customer_id,
                    "b_outcome_id": outcome.outcome_id,
                    "b_state": outcome.state.value,
                    "b_sequence": end.sequence,
                    "b_fingerprint": end.fingerprint,
                    "b_units_returned": end.units_returned,
                    "b_refunded_nanos": end.refunded.nanos,
                }
            ],
        )

    def pending_settling_before(
        self, customer_id: str, end: datetime
    ) -> dict[str, tuple[int, int]]:
        """Per currency, how many pending outcomes settle by themselves before ``end``, and
        their charge in nanos (each settles no earlier than now, so within the month ending
        at ``end`` when asked for the current month)."""
        rows = self._unit.db().all(
            _PENDING_SETTLING, {"customer_id": customer_id, "end": to_micros(end)}
        )
        return {r["currency"]: (int(r["outcomes"]), int(r["charged"])) for r in rows}

    def due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(customer_id, outcome_id) of pending outcomes whose window has passed, oldest first."""
        rows = self._unit.db().all(_DUE, {"now": to_micros(now), "limit": limit})
        return [(r["customer_id"], r["outcome_id"]) for r in rows]
