"""Manual draws (ConsumeBucket): each request id once per customer, with its answer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, select

from rating_service.domain.buckets import Draw
from rating_service.domain.results import Consumed
from rating_service.ledger.schema import consumptions

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

_PRIOR = select(consumptions).where(
    and_(
        consumptions.c.customer_id == bindparam("customer_id"),
        consumptions.c.request_id == bindparam("request_id"),
    )
)
_INSERT = consumptions.insert()


def _to_json(result: Consumed) -> str:
    return json.dumps(
        {
            "consumed": result.consumed,
            "lines": [[d.bucket_id, d.units, d.remaining] for d in result.lines],
            "remaining_total": result.remaining_total,
        }
    )


def _from_json(text: str, sequence: int) -> Consumed:
    data = json.loads(text)
    return Consumed(
        consumed=data["consumed"],
        lines=tuple(Draw(b, u, r) for b, u, r in data["lines"]),
        remaining_total=data["remaining_total"],
        ledger_sequence=sequence,
        replayed=True,
    )


class Consumptions:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def get(self, customer_id: str, request_id: str) -> tuple[str, Consumed] | None:
        """The fingerprint of the earlier call with this request id, and its answer (replayed)."""
        row = self._unit.db().first(_PRIOR, {"customer_id": customer_id, "request_id": request_id})
        if row is None:
            return None
        return row["fingerprint"], _from_json(row["result"], row["sequence"])

    def add(self, customer_id: str, request_id: str, fingerprint: str, result: Consumed) -> None:
        self._unit.db_write().many(
            _INSERT,
            [
                {
                    "customer_id": customer_id,
                    "request_id": request_id,
                    "fingerprint": fingerprint,
                    "sequence": result.ledger_sequence,
                    "result": _to_json(result),
                }
            ],
        )
