"""A ledger entry's row: its time-ordered id and its hash, chained to the previous entry."""

from __future__ import annotations

import os
import time
from typing import Any

from rating_service.domain.postings import Transaction
from rating_service.ledger.codec import to_micros
from rating_service.ledger.hashing import entry_hash

ENTRY_COLUMNS = (
    "customer_id",
    "sequence",
    "transaction_id",
    "kind",
    "outcome_type",
    "outcome_id",
    "request_id",
    "bucket_id",
    "units",
    "amount_nanos",
    "currency",
    "occurred_at",
    "recorded_at",
    "prev_hash",
    "hash",
)
"""The order of ``entry_values``: the ``ledger_entries`` columns."""


def time_ordered_uuid() -> str:
    """A UUIDv7 (RFC 9562): new ids land at the end of the unique index, not at random
    leaves of it, so inserts stay cheap however long the ledger is."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = (rand >> 64) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    # Formatted by hand: building a uuid.UUID to print it costs twice as much.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def entry_values(
    customer_id: str, sequence: int, prev_hash: str, tx: Transaction, recorded_at: int
) -> tuple[Any, ...]:
    """The ``ledger_entries`` row of ``tx`` at ``sequence`` (``ENTRY_COLUMNS``), its hash
    chained to ``prev_hash``: a tuple, as the driver takes it, built once per entry."""
    amount = tx.amount
    transaction_id = time_ordered_uuid()
    kind = tx.kind.value
    nanos = amount.nanos if amount else 0
    currency = amount.currency if amount else ""
    occurred_at = to_micros(tx.occurred_at)
    digest = entry_hash(
        prev_hash,
        customer_id,
        sequence,
        transaction_id,
        kind,
        tx.outcome_type,
        tx.outcome_id,
        tx.request_id,
        tx.bucket_id,
        tx.units,
        nanos,
        currency,
        occurred_at,
        recorded_at,
        tx.postings,
    )
    return (
        customer_id,
        sequence,
        transaction_id,
        kind,
        tx.outcome_type,
        tx.outcome_id,
        tx.request_id,
        tx.bucket_id,
        tx.units,
        nanos,
        currency,
        occurred_at,
        recorded_at,
        prev_hash,
        digest,
    )
