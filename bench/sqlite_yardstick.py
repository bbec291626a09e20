"""The storage yardsticks: raw stdlib sqlite3 writes, as durable as the service.

No Python program can commit to SQLite faster than the standard library's
``sqlite3`` with nothing around it, so this is the ceiling the ledger writer is
compared with: the same file system, the same durability (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``), a row shaped like a
``ledger_entries`` row (same columns, the same primary key and unique
transaction id), once with one row per transaction (every commit waits for
the disk) and once with 1,000 (the cost is the rows).

A settled outcome is not one row, though, so a third yardstick
(``measure_settled_outcomes``) is the storage floor of one: on the service's
own tables and indexes, every row ``LedgerStore._record`` writes for an
outcome settled at once without a bucket (a ``ledger_entries`` row, its four
postings, its ``outcomes`` row) and the projections it moves (balances, the
customer's chain head), batched as well as a writer can batch them. No writer
of this schema records outcomes faster than that, whatever it does in Python.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import sqlite3
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine

from bench import bulkfill
from rating_service.ledger.schema import metadata

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


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _durable(path: Path) -> sqlite3.Connection:
    """A connection as durable as the service's: WAL, ``synchronous=FULL``, explicit BEGINs."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _connect(path: Path) -> sqlite3.Connection:
    conn = _durable(path)
    conn.execute(SCHEMA)
    return conn


def measure(path: Path, rows_per_transaction: int, seconds: float) -> InsertRate:
    """Insert for about ``seconds`` into a fresh file at ``path``, timing the transactions only.

    Rows are built between transactions, off the clock: the yardstick is what
    storage costs, not what making a row costs.
    """
    _remove(path)
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


# ---- the storage floor of one settled outcome ------------------------------------------

OUTCOMES_PER_TRANSACTION = 1000
WRITER_CACHE = "PRAGMA cache_size=-65536"
"""The service's writer connection keeps 64 MiB of pages (``rating_service.ledger.engine``);
the floor gets as much, so the indexes it updates stay as hot as the service's."""


@dataclass(frozen=True)
class OutcomeRate:
    """Settled outcomes written, and the rows they took (inserted, upserted and updated)."""

    outcomes_per_transaction: int
    customers: int
    outcomes: int
    rows: int
    seconds: float

    @property
    def outcomes_per_s(self) -> float:
        return self.outcomes / self.seconds if self.seconds else 0.0

    @property
    def rows_per_outcome(self) -> float:
        return self.rows / self.outcomes if self.outcomes else 0.0


def _create_schema(path: Path, page_size: int | None = None) -> None:
    """The service's tables and indexes (``schema.metadata``) in a fresh file at ``path``.

    ``create_all`` leaves out the migrations' append-only triggers, which fire on
    UPDATE and DELETE only: the inserts timed here would not run them anyway.
    ``page_size``: the file's page size instead of SQLite's (set before anything is
    written: a file's page size changes only by a VACUUM after that).
    """
    if page_size is not None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(f"PRAGMA page_size={int(page_size)}")
            conn.execute("PRAGMA journal_mode=WAL")
    engine = create_engine(f"sqlite:///{path}")
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def measure_settled_outcomes(
    path: Path,
    seconds: float,
    *,
    outcomes_per_transaction: int = OUTCOMES_PER_TRANSACTION,
    customers: int = CUSTOMERS,
    existing: bool = False,
) -> OutcomeRate:
    """Settled outcomes into a fresh ledger at ``path``, about ``seconds`` of transactions.

    ``existing``: append to the ledger already at ``path`` instead (its customers'
    chains continue), to see what a long history costs the storage itself.

    Per outcome, the rows ``LedgerStore._record`` writes for an outcome settled
    at once with no bucket (``bench.bulkfill.add_outcome``, whose ledgers
    ``rating-service verify`` accepts): a ``ledger_entries`` row chained and
    hashed by ``entry_values``, the four postings of ``outcome_rated`` (a unit and
    its charge, each from ``world`` to the month's usage) and an ``outcomes``
    row. Per transaction, as a well-batched writer would: the balances upserted
    once per (customer, account, asset) and each customer's head moved once
    (``bench.bulkfill.write_batch``: ``executemany`` per table), ``customers`` taking
    turns. Rows are built between transactions, off the clock.
    """
    if not existing:
        _remove(path)
        _create_schema(path)
    ids = tuple(bulkfill.customer_id(i) for i in range(customers))
    written = rows = 0
    spent = 0.0
    with contextlib.closing(_durable(path)) as conn:
        conn.execute(WRITER_CACHE)
        now = int(time.time() * 1_000_000)
        heads = bulkfill.set_up(conn, ids, dict.fromkeys(ids, ""), now)
        while spent < seconds:
            batch = bulkfill.Batch()
            now = int(time.time() * 1_000_000)
            for n in range(outcomes_per_transaction):
                customer = ids[(written + n) % customers]
                bulkfill.add_outcome(batch, customer, heads[customer], now + n)
            started = time.perf_counter()
            bulkfill.write_batch(conn, batch, heads)
            spent += time.perf_counter() - started
            written += len(batch.outcomes)
            rows += batch.rows + len(batch.balances) + len(batch.heads)
    return OutcomeRate(outcomes_per_transaction, customers, written, rows, spent)


# ---- pages per commit: what a layout costs, whatever else the machine runs ---------------

WAL_HEADER = 32
WAL_FRAME_HEADER = 24
"""The WAL file's layout (sqlite.org/fileformat.html): a header, then a frame per page."""


@dataclass(frozen=True)
class CommitPages:
    """Per transaction of the settled-outcome floor: the pages it wrote, and its times."""

    outcomes_per_transaction: int
    page_size: int
    pages: tuple[int, ...]
    """WAL frames each commit appended: every page the transaction changed, once."""
    commit_seconds: tuple[float, ...]
    checkpoint_seconds: tuple[float, ...]
    """Copying those pages into the database file, as SQLite's autocheckpoint would."""

    @property
    def median_pages(self) -> float:
        return statistics.median(self.pages)

    @property
    def median_kib(self) -> float:
        return self.median_pages * self.page_size / 1024


def measure_commit_pages(
    path: Path,
    transactions: int,
    *,
    warmup: int = 0,
    page_size: int | None = None,
    outcomes_per_transaction: int = OUTCOMES_PER_TRANSACTION,
    customers: int = CUSTOMERS,
    existing: bool = False,
) -> CommitPages:
    """The floor's transactions (``measure_settled_outcomes``) one by one, each into an empty
    WAL: its size after the commit counts the pages the commit wrote. Timings move with
    the machine's load; the page count does not, so a change of keys, indexes or table
    layout is judged by it. Autocheckpoint is off; each commit is checkpointed after it.

    ``warmup`` transactions go first, uncounted: on a fresh ledger the count climbs for
    the first 60 or so (60,000 outcomes), until each customer's newest keys sit on a
    leaf of their own in every per-customer index, and then levels off. ``page_size``: of
    a fresh ledger (SQLite's default otherwise); ``CommitPages.kib`` compares sizes."""
    if not existing:
        _remove(path)
        _create_schema(path, page_size)
    ids = tuple(bulkfill.customer_id(i) for i in range(customers))
    pages: list[int] = []
    commits: list[float] = []
    checkpoints: list[float] = []
    with contextlib.closing(_durable(path)) as conn:
        conn.execute(WRITER_CACHE)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        now = int(time.time() * 1_000_000)
        heads = bulkfill.set_up(conn, ids, dict.fromkeys(ids, ""), now)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal = Path(f"{path}-wal")
        for t in range(warmup + transactions):
            batch = bulkfill.Batch()
            now = int(time.time() * 1_000_000)
            for n in range(outcomes_per_transaction):
                customer = ids[(t * outcomes_per_transaction + n) % customers]
                bulkfill.add_outcome(batch, customer, heads[customer], now + n)
            started = time.perf_counter()
            bulkfill.write_batch(conn, batch, heads)
            committed = time.perf_counter()
            written = (wal.stat().st_size - WAL_HEADER) // (WAL_FRAME_HEADER + page_size)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if t >= warmup:
                pages.append(written)
                checkpoints.append(time.perf_counter() - committed)
                commits.append(committed - started)
    return CommitPages(
        outcomes_per_transaction, page_size, tuple(pages), tuple(commits), tuple(checkpoints)
    )
