"""The storage yardstick: raw stdlib sqlite3 inserts of a ledger-entry row, as durable as the service.

No Python program can commit to SQLite faster than the standard library's
``sqlite3`` with nothing around it, so this is the ceiling the ledger writer is
compared with: the same file system, the same durability (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``), a row shaped like a
``ledger_entries`` row (same columns, the same primary key and unique
transaction id), once with one row per transaction (every commit waits for
the disk) and once with 1,000 (the cost is the rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE ledger_entries (
    customer_id VARCHAR(128) NOT NULL,
    sequence BIGINT NOT NULL,
    transaction_id VARCHAR(36) NOT NULL UNIQUE,
    kind VARCHAR(24) NOT NULL,
    outcome_type VARCHAR(128) NOT NULL DEFAULT '',
    outcome_id VARCHAR(128) NOT NULL DEFAULT '',
    request_id VARCHAR(128) NOT NULL DEFAULT '',
    bucket_id VARCHAR(128) NOT NULL DEFAULT '',
    units BIGINT NOT NULL,
    amount_nanos BIGINT NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT '',
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    PRIMARY KEY (customer_id, sequence)
)
"""
INSERT = "INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
CUSTOMERS = 200

Row = tuple[str, int, str, str, str, str, str, str, int, int, str, int, int, str, str]


@dataclass(frozen=True)
class InsertRate:
    rows_per_transaction: int
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _rows() -> Iterator[Row]:
    """Ledger-entry rows for CUSTOMERS customers in turn, each chain hashed like the service's."""
    heads = [""] * CUSTOMERS
    for n in itertools.count():
        c = n % CUSTOMERS
        now = int(time.time() * 1_000_000)
        txid = str(uuid.uuid4())
        digest = hashlib.sha256(f"{heads[c]}|{c}|{n}|{txid}".encode()).hexdigest()
        yield (
            f"bench-customer-{c:04d}",
            n // CUSTOMERS + 1,
            txid,
            "OUTCOME_RATED",
            "resolution",
            f"conv-{n:012d}",
            "",
            "",
            1,
            990_000_000,
            "USD",
            now,
            now,
            heads[c] or "0" * 64,
            digest,
        )
        heads[c] = digest


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(SCHEMA)
    return conn


def measure(path: Path, rows_per_transaction: int, seconds: float) -> InsertRate:
    """Insert for about ``seconds`` into a fresh file at ``path``, timing the transactions only.

    Rows are built between transactions, off the clock: the yardstick is what
    storage costs, not what making a row costs.
    """
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rows = _rows()
    written = 0
    spent = 0.0
    with contextlib.closing(_connect(path)) as conn:
        while spent < seconds:
            batch = list(itertools.islice(rows, rows_per_transaction))
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            if rows_per_transaction == 1:
                conn.execute(INSERT, batch[0])
            else:
                conn.executemany(INSERT, batch)
            conn.execute("COMMIT")
            spent += time.perf_counter() - started
            written += len(batch)
    return InsertRate(rows_per_transaction, written, spent)
