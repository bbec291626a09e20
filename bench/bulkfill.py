"""Bulk-fill a ledger database with settled outcomes, fast, for benchmarks.

Why: the service records about a thousand outcomes a second (durable group
commit), so a benchmark that needs a ledger of a million or ten million
entries cannot build it through the API. This writes, row for row, what
``LedgerStore._record`` writes for an outcome recorded as confirmed at the
moment it occurred: an ``OUTCOME_RATED`` entry with the postings that
``rating_service.domain.postings.outcome_rated`` builds, hashed into the
customer's chain by ``rating_service.ledger.append.entry_values``, the balances
and the customer's head moved with it, and its ``outcomes`` row. The result is
a ledger that ``rating-service verify`` accepts and that the service and the
reporter can carry on from.

Speed comes from the standard library's ``sqlite3`` with ``executemany`` in
large transactions (``batch`` outcomes each, about six rows per outcome) and,
**for the fill only, durability traded away**: ``synchronous=OFF`` (a crash or
power loss during the fill can leave a corrupt file: delete it and fill again)
and a big page cache. ``journal_mode=WAL`` is what the service uses anyway. The
fill ends with a checkpoint under ``synchronous=FULL``, so what it reports as
written is on disk.

Time: customer ``i``'s ``k``-th outcome occurs at ``start + k * interval +
i * interval / customers``, so every customer has one outcome every
``interval`` (default 5 s), the customers are interleaved in time, and rows are
inserted in time order as the service would have written them. By default the
outcomes end a minute before now and start as far back as that needs, but
never before the start of the current month (UTC): the interval shrinks
instead, so the reporter sees usage of one billing period, aggregating into
windows as a busy customer's would.

Use it from code (``fill(path, outcomes=..., customers=...)``) or as
``python -m bench.bulkfill --db PATH --outcomes N --customers C``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rating_service.domain.commands import OutcomeState, RecordOutcome
from rating_service.domain.money import Money
from rating_service.domain.postings import OutcomeTake, outcome_rated
from rating_service.domain.ratecard import Price, RateCardVersion
from rating_service.ledger.append import ENTRY_COLUMNS, entry_values
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.hashing import GENESIS
from rating_service.ledger.migrate import upgrade
from rating_service.ledger.repositories.rate_cards import encode_prices

OUTCOME_TYPE = "resolution"
RATE_CARD_ID = "bench-standard"
UNIT_PRICE = Money("USD", 990_000_000)
"""0.99 USD an outcome."""
RATE_CARD_EFFECTIVE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
"""Fixed, so that filling the same database again finds the same rate card version."""
DEFAULT_INTERVAL = timedelta(seconds=5)
DEFAULT_BATCH = 10_000
"""Outcomes per transaction: about 60,000 rows (entry, 4 postings, outcome row)."""
END_MARGIN = timedelta(minutes=1)
"""The newest outcome is this much before now (never in the future for Stripe)."""
PROGRESS_EVERY = 5.0
"""Seconds between progress reports."""

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=OFF",  # the fill only; see the module docstring
    "PRAGMA cache_size=-262144",  # 256 MiB: keeps the primary-key indexes' hot pages in memory
    "PRAGMA temp_store=MEMORY",
    "PRAGMA busy_timeout=10000",
)

_INSERT_RATE_CARD = (
    "INSERT INTO rate_card_versions (rate_card_id, effective_from, currency, prices, recorded_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (rate_card_id, effective_from) DO NOTHING"
)
_INSERT_CUSTOMER = (
    "INSERT INTO customers (customer_id, stripe_customer_id, rate_card_id, head_sequence,"
    " head_hash, created_at, updated_at) VALUES (?, ?, ?, 0, '', ?, ?)"
    " ON CONFLICT (customer_id) DO NOTHING"
)
_HASH = ENTRY_COLUMNS.index("hash")
_INSERT_ENTRY = (
    f"INSERT INTO ledger_entries ({', '.join(ENTRY_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})"
)
_INSERT_POSTING = (
    "INSERT INTO ledger_postings (customer_id, sequence, position, account, asset, amount)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_OUTCOME = (
    "INSERT INTO outcomes (customer_id, outcome_id, fingerprint, outcome_type, state,"
    " recorded_state, occurred_at, recorded_at, settles_at, bucket_id, unit_price_nanos,"
    " charged_nanos, currency, rate_card_version, rate_card_id, attributes, record_sequence,"
    " settle_sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, '{}', ?, ?)"
)
_COUNT_USAGE = (
    "INSERT INTO usage_days (customer_id, day, outcome_type, currency, unit_price_nanos,"
    " settled, reversed, covered_settled, covered_reversed) VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0)"
    " ON CONFLICT (customer_id, day, outcome_type, currency, unit_price_nanos)"
    " DO UPDATE SET settled = settled + excluded.settled"
)
_UPSERT_BALANCE = (
    "INSERT INTO balances (customer_id, account, asset, amount) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (customer_id, account, asset) DO UPDATE SET amount = amount + excluded.amount"
)
_MOVE_HEAD = "UPDATE customers SET head_sequence = ?, head_hash = ? WHERE customer_id = ?"

Progress = Callable[[int, int, float], None]
"""Called after each committed batch: outcomes written, outcomes asked for, seconds so far."""


def customer_id(index: int) -> str:
    return f"bench-{index:06d}"


def stripe_customer_id(index: int) -> str:
    return f"cus_bench{index:06d}"


def outcome_id(sequence: int) -> str:
    """Unique per customer: the ledger sequence of the entry that settled it."""
    return f"bulk-{sequence:09d}"


@dataclass(frozen=True)
class FillResult:
    database_path: Path
    outcomes: int
    customer_ids: tuple[str, ...]
    stripe_ids: Mapping[str, str]
    """Rating customer -> Stripe customer id ("" when filled with ``stripe_ids=False``)."""
    rows: int
    """Rows inserted into ledger_entries, ledger_postings and outcomes."""
    seconds: float
    first_at: datetime
    last_at: datetime
    interval: timedelta
    """Between two outcomes of one customer."""
    outcome_type: str = OUTCOME_TYPE
    rate_card_id: str = RATE_CARD_ID
    unit_price: Money = UNIT_PRICE

    @property
    def customers(self) -> int:
        return len(self.customer_ids)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def outcomes_per_second(self) -> float:
        return self.outcomes / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"filled {self.outcomes:,} outcomes ({self.rows:,} rows) for {self.customers:,} "
            f"customers in {self.seconds:.1f} s: {self.rows_per_second:,.0f} rows/s, "
            f"{self.outcomes_per_second:,.0f} outcomes/s; outcomes from "
            f"{self.first_at.isoformat()} to {self.last_at.isoformat()}, one per customer "
            f"every {self.interval.total_seconds():g} s"
        )


@dataclass(frozen=True)
class Timeline:
    """When each outcome occurs, by its global index (customers interleaved, time order)."""

    start_us: int
    interval_us: int
    customers: int

    def at(self, index: int) -> int:
        round_, customer = divmod(index, self.customers)
        return (
            self.start_us
            + round_ * self.interval_us
            + customer * self.interval_us // self.customers
        )


def plan_timeline(
    outcomes: int,
    customers: int,
    *,
    start: datetime | None,
    interval: timedelta,
    now: datetime,
) -> Timeline:
    """``start`` as given, or ending ``END_MARGIN`` before ``now`` within ``now``'s month."""
    rounds = math.ceil(outcomes / customers)
    if start is not None:
        return Timeline(to_micros(start), _micros(interval), customers)
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = max(now - END_MARGIN, month_start)
    wanted = end - rounds * interval
    if wanted >= month_start:
        return Timeline(to_micros(wanted), _micros(interval), customers)
    squeezed = (end - month_start) // rounds  # this month has not had that much time yet
    return Timeline(to_micros(month_start), _micros(squeezed), customers)


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


@dataclass
class Head:
    """A customer's chain head as the fill moves it."""

    sequence: int
    hash: str


@dataclass
class Batch:
    """The rows of one transaction."""

    entries: list[tuple[object, ...]] = field(default_factory=list)
    postings: list[tuple[object, ...]] = field(default_factory=list)
    outcomes: list[tuple[object, ...]] = field(default_factory=list)
    balances: defaultdict[tuple[str, str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    heads: set[str] = field(default_factory=set)
    usage: defaultdict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    """Settled outcomes per (customer, day): the ledger's daily usage counts (``usage_days``)."""

    @property
    def rows(self) -> int:
        return len(self.entries) + len(self.postings) + len(self.outcomes)


_RATE_CARD_VERSION_US = to_micros(RATE_CARD_EFFECTIVE_FROM)
_DAY_US = 86_400_000_000


def add_outcome(batch: Batch, customer: str, head: Head, at_us: int) -> None:
    """One settled outcome, exactly as ``LedgerStore._record`` writes it, into ``batch``."""
    at = from_micros(at_us)
    sequence = head.sequence + 1
    oid = outcome_id(sequence)
    tx = outcome_rated(
        OutcomeTake(oid, OUTCOME_TYPE, None, UNIT_PRICE, UNIT_PRICE), at, was_pending=False
    )
    entry = entry_values(customer, sequence, head.hash or GENESIS, tx, at_us)
    batch.entries.append(entry)
    digest = entry[_HASH]
    for position, p in enumerate(tx.postings):
        batch.postings.append((customer, sequence, position, p.account, p.asset, p.amount))
        batch.balances[(customer, p.account, p.asset)] += p.amount
    fingerprint = RecordOutcome(
        customer, oid, OUTCOME_TYPE, at, OutcomeState.CONFIRMED
    ).fingerprint()
    settled = OutcomeState.SETTLED.value
    batch.outcomes.append(
        (
            customer,
            oid,
            fingerprint,
            OUTCOME_TYPE,
            settled,
            settled,
            at_us,
            at_us,
            UNIT_PRICE.nanos,
            UNIT_PRICE.nanos,
            UNIT_PRICE.currency,
            _RATE_CARD_VERSION_US,
            RATE_CARD_ID,
            sequence,
            sequence,
        )
    )
    head.sequence, head.hash = sequence, digest
    batch.heads.add(customer)
    batch.usage[(customer, at_us // _DAY_US * _DAY_US)] += 1


def write_batch(conn: sqlite3.Connection, batch: Batch, heads: Mapping[str, Head]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_INSERT_ENTRY, batch.entries)
        conn.executemany(_INSERT_POSTING, batch.postings)
        conn.executemany(_INSERT_OUTCOME, batch.outcomes)
        conn.executemany(_UPSERT_BALANCE, [(*key, v) for key, v in sorted(batch.balances.items())])
        conn.executemany(
            _COUNT_USAGE,
            [
                (c, day, OUTCOME_TYPE, UNIT_PRICE.currency, UNIT_PRICE.nanos, n)
                for (c, day), n in sorted(batch.usage.items())
            ],
        )
        conn.executemany(
            _MOVE_HEAD, [(heads[c].sequence, heads[c].hash, c) for c in sorted(batch.heads)]
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _batches(
    timeline: Timeline, outcomes: int, ids: Sequence[str], heads: Mapping[str, Head], size: int
) -> Iterator[Batch]:
    for first in range(0, outcomes, size):
        batch = Batch()
        for index in range(first, min(first + size, outcomes)):
            customer = ids[index % len(ids)]
            add_outcome(batch, customer, heads[customer], timeline.at(index))
        yield batch


def migrate(database_path: Path) -> None:
    """``rating_service.ledger.migrate.upgrade``, from sync code, inside an event loop or not."""
    url = f"sqlite+aiosqlite:///{database_path}"
    with ThreadPoolExecutor(max_workers=1) as pool:  # Alembic's env.py runs its own loop
        pool.submit(asyncio.run, upgrade(url)).result()


def _connect(database_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(database_path, isolation_level=None)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    return conn


def set_up(
    conn: sqlite3.Connection, ids: Sequence[str], stripe_ids: Mapping[str, str], created_us: int
) -> dict[str, Head]:
    """The rate card and the customers (kept if there), and each customer's chain head."""
    version = RateCardVersion(
        RATE_CARD_ID,
        RATE_CARD_EFFECTIVE_FROM,
        UNIT_PRICE.currency,
        {OUTCOME_TYPE: Price(OUTCOME_TYPE, UNIT_PRICE)},
    )
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        _INSERT_RATE_CARD,
        (
            RATE_CARD_ID,
            _RATE_CARD_VERSION_US,
            UNIT_PRICE.currency,
            encode_prices(version),
            created_us,
        ),
    )
    conn.executemany(
        _INSERT_CUSTOMER, [(c, stripe_ids[c], RATE_CARD_ID, created_us, created_us) for c in ids]
    )
    rows = conn.execute(
        "SELECT customer_id, rate_card_id, head_sequence, head_hash FROM customers"
    ).fetchall()
    conn.execute("COMMIT")
    wanted = set(ids)
    heads: dict[str, Head] = {}
    for cid, card, sequence, digest in rows:
        if cid not in wanted:
            continue
        if card != RATE_CARD_ID:
            raise ValueError(f"customer {cid!r} exists on rate card {card!r}, not {RATE_CARD_ID!r}")
        heads[cid] = Head(sequence, digest)
    return heads


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Make the fill durable and the WAL small: the benchmark starts from a settled file."""
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def fill(
    database_path: Path,
    *,
    outcomes: int,
    customers: int,
    stripe_ids: bool = True,
    start: datetime | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> FillResult:
    """Migrate ``database_path`` and append ``outcomes`` settled outcomes for ``customers``.

    Customers are ``bench-000000`` ... (Stripe ids ``cus_bench000000`` ...,
    or none), on rate card ``bench-standard`` (``resolution`` at 0.99 USD).
    Filling a database filled before appends to the same customers' chains.
    """
    if outcomes < 0 or customers < 1 or batch < 1:
        raise ValueError(
            f"need outcomes >= 0, customers >= 1, batch >= 1 (got {outcomes}, {customers}, {batch})"
        )
    if start is not None and start.tzinfo is None:
        raise ValueError(f"start must carry a UTC offset, got {start.isoformat()}")
    migrate(database_path)
    now = datetime.now(UTC)
    timeline = plan_timeline(outcomes, customers, start=start, interval=interval, now=now)
    ids = tuple(customer_id(i) for i in range(customers))
    stripe = {c: stripe_customer_id(i) if stripe_ids else "" for i, c in enumerate(ids)}
    began = time.perf_counter()
    rows = written = 0
    with contextlib.closing(_connect(database_path)) as conn:
        heads = set_up(conn, ids, stripe, to_micros(now))
        for one in _batches(timeline, outcomes, ids, heads, batch):
            write_batch(conn, one, heads)
            rows += one.rows
            written += len(one.outcomes)
            if progress is not None:
                progress(written, outcomes, time.perf_counter() - began)
        _checkpoint(conn)
    seconds = time.perf_counter() - began
    last_index = max(outcomes - 1, 0)
    return FillResult(
        database_path=database_path,
        outcomes=outcomes,
        customer_ids=ids,
        stripe_ids=stripe,
        rows=rows,
        seconds=seconds,
        first_at=from_micros(timeline.at(0)),
        last_at=from_micros(timeline.at(last_index)),
        interval=timedelta(microseconds=timeline.interval_us),
    )


def throttled_printer(every: float = PROGRESS_EVERY) -> Progress:
    """A ``Progress`` that prints at most every ``every`` seconds (and at the end)."""
    last = -every

    def report(done: int, total: int, seconds: float) -> None:
        nonlocal last
        if seconds - last < every and done < total:
            return
        last = seconds
        rate = done / seconds if seconds else 0.0
        print(f"  {done:,}/{total:,} outcomes, {seconds:.0f} s, {rate:,.0f} outcomes/s", flush=True)

    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bulkfill",
        description="Fill a (migrated on the way) SQLite ledger with settled outcomes, fast. "
        "Not durable while it runs (synchronous=OFF): a benchmark fixture.",
    )
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if absent)")
    parser.add_argument("--outcomes", type=int, required=True, help="settled outcomes to write")
    parser.add_argument(
        "--customers", type=int, required=True, help="customers to spread them over"
    )
    parser.add_argument("--no-stripe-ids", action="store_true", help="customers without Stripe ids")
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help="first outcome's time, ISO 8601 with offset (default: ending a minute ago)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL.total_seconds(),
        help="seconds between two outcomes of one customer (default %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help="outcomes per transaction (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = fill(
        args.db,
        outcomes=args.outcomes,
        customers=args.customers,
        stripe_ids=not args.no_stripe_ids,
        start=args.start,
        interval=timedelta(seconds=args.interval),
        batch=args.batch,
        progress=throttled_printer(),
    )
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
