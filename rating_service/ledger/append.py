"""Appending a transaction: entry, postings, balances and the chain head, in one go."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable

from rating_service.domain.postings import Transaction
from rating_service.ledger.codec import to_micros
from rating_service.ledger.hashing import GENESIS, entry_hash
from rating_service.ledger.reads import CustomerHead
from rating_service.ledger.schema import balances, customers, ledger_entries, ledger_postings


def time_ordered_uuid() -> str:
    """A UUIDv7 (RFC 9562): new ids land at the end of the unique index, not at random
    leaves of it, so inserts stay cheap however long the ledger is."""
    millis = time.time_ns() // 1_000_000
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def _upsert(dialect: Any) -> Executable:
    statement = dialect.insert(balances)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[balances.c.customer_id, balances.c.account, balances.c.asset],
        set_={"amount": balances.c.amount + statement.excluded.amount},
    )
    return upsert


# Built once: building a statement costs more than running it.
_UPSERT_BALANCES = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}
_INSERT_ENTRY = ledger_entries.insert()
_INSERT_POSTINGS = ledger_postings.insert()
_MOVE_HEAD = (
    update(customers)
    .where(customers.c.customer_id == bindparam("id"))
    .values(head_sequence=bindparam("sequence"), head_hash=bindparam("hash"))
)


def entry_row(
    customer_id: str, sequence: int, prev_hash: str, tx: Transaction, recorded_at: int
) -> dict[str, Any]:
    """The ``ledger_entries`` row of ``tx`` at ``sequence``, its hash chained to ``prev_hash``."""
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "sequence": sequence,
        "transaction_id": time_ordered_uuid(),
        "kind": tx.kind.value,
        "outcome_type": tx.outcome_type,
        "outcome_id": tx.outcome_id,
        "request_id": tx.request_id,
        "bucket_id": tx.bucket_id,
        "units": tx.units,
        "amount_nanos": tx.amount.nanos if tx.amount else 0,
        "currency": tx.amount.currency if tx.amount else "",
        "occurred_at": to_micros(tx.occurred_at),
        "recorded_at": recorded_at,
        "prev_hash": prev_hash,
    }
    row["hash"] = entry_hash(**row, postings=tx.postings)
    return row


def append(conn: Connection, head: CustomerHead, tx: Transaction, recorded_at: int) -> int:
    """Append ``tx`` to ``head``'s chain and return its sequence; ``head`` moves with it."""
    sequence = head.head_sequence + 1
    row = entry_row(head.customer_id, sequence, head.head_hash or GENESIS, tx, recorded_at)
    digest = row["hash"]
    conn.execute(_INSERT_ENTRY, row)
    if tx.postings:
        conn.execute(
            _INSERT_POSTINGS,
            [
                {
                    "customer_id": head.customer_id,
                    "sequence": sequence,
                    "position": position,
                    "account": p.account,
                    "asset": p.asset,
                    "amount": p.amount,
                }
                for position, p in enumerate(tx.postings)
            ],
        )
        deltas: dict[tuple[str, str], int] = defaultdict(int)
        for p in tx.postings:
            deltas[(p.account, p.asset)] += p.amount
        conn.execute(
            _UPSERT_BALANCES[conn.dialect.name],
            [
                {"customer_id": head.customer_id, "account": a, "asset": s, "amount": amount}
                for (a, s), amount in sorted(deltas.items())
            ],
        )
    conn.execute(_MOVE_HEAD, {"id": head.customer_id, "sequence": sequence, "hash": digest})
    head.head_sequence = sequence
    head.head_hash = digest
    return sequence
