"""Replay every customer's chain and prove nobody edited the ledger out of band.

Checks: a gap-free sequence from 1 to the customer's head, each entry's
``prev_hash`` and recomputed ``hash``, postings that sum to zero per asset,
every stored balance equal to the replayed one, and every daily usage count
(``usage_days``) equal to the settlements and reversals replayed (each at its
outcome's unit price: the entry's amount, or for a bucket-covered outcome the
price its ``outcomes`` row keeps).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from rating_service.domain.postings import WORLD, Posting, is_balanced
from rating_service.ledger.engine import Engines
from rating_service.ledger.hashing import GENESIS, entry_hash
from rating_service.ledger.history import load_stored
from rating_service.ledger.schema import balances, customers, outcomes, usage_days

PAGE = 1000
DAY_US = 86_400_000_000
_COUNTED = {"OUTCOME_RATED": (0, 2), "OUTCOME_REVERSED": (1, 3)}
"""Entry kind -> (its count, its count when a bucket covered it) in a usage_days row."""
_COUNTS = ("settled", "reversed", "covered_settled", "covered_reversed")
UsageDay = tuple[int, str, str, int]
"""(day, outcome_type, currency, unit_price_nanos)"""


@dataclass
class Report:
    customers: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Stored:
    """An entry exactly as stored: verify decodes nothing, so no edited value can crash it."""

    row: RowMapping
    postings: tuple[Posting, ...]

    @property
    def sequence(self) -> int:
        return int(self.row["sequence"])

    def recomputed_hash(self) -> str:
        fields = {k: self.row[k] for k in _HASHED}
        return entry_hash(**fields, postings=self.postings)


_HASHED = (
    "prev_hash",
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
)
"""The columns an entry's hash covers (``hashing.entry_hash``), besides its postings."""


def _chain(conn: Connection, customer_id: str) -> Iterator[_Stored]:
    after = 0
    while page := load_stored(conn, customer_id, after=after, limit=PAGE):
        for row, postings in page:
            yield _Stored(row, postings)
        after = page[-1][0]["sequence"]


async def verify(engines: Engines) -> Report:
    """Replays on one read snapshot, so a running service may keep writing meanwhile."""
    async with engines.reader.connect() as conn, conn.begin():
        return await conn.run_sync(_verify_all)


def _verify_all(conn: Connection) -> Report:
    report = Report()
    heads = conn.execute(select(customers).order_by(customers.c.customer_id)).all()
    for head in heads:
        report.customers += 1
        _verify_customer(conn, head.customer_id, head.head_sequence, head.head_hash, report)
    return report


def _verify_customer(
    conn: Connection, customer_id: str, head_sequence: int, head_hash: str, report: Report
) -> None:
    where = f"customer {customer_id!r}"
    expected_sequence, prev_hash = 1, GENESIS
    replayed: dict[tuple[str, str], int] = defaultdict(int)
    covered_prices = _covered_prices(conn, customer_id)
    usage: dict[UsageDay, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for entry in _chain(conn, customer_id):
        report.entries += 1
        at = f"{where} sequence {entry.sequence}"
        if entry.sequence != expected_sequence:
            report.problems.append(f"{at}: expected sequence {expected_sequence} (a gap)")
        if entry.row["prev_hash"] != prev_hash:
            report.problems.append(f"{at}: prev_hash does not match the previous entry's hash")
        if entry.recomputed_hash() != entry.row["hash"]:
            report.problems.append(f"{at}: hash mismatch (the entry or its postings were edited)")
        if not is_balanced(entry.postings):
            report.problems.append(f"{at}: postings do not sum to zero per asset")
        for p in entry.postings:
            if type(p.amount) is not int:
                report.problems.append(f"{at}: posting amount {p.amount!r} is not an exact integer")
            replayed[(p.account, p.asset)] += p.amount
        _count_usage(entry.row, covered_prices, usage)
        expected_sequence, prev_hash = entry.sequence + 1, entry.row["hash"]
    if expected_sequence - 1 != head_sequence:
        report.problems.append(
            f"{where}: head sequence is {head_sequence} but the chain ends at {expected_sequence - 1}"
        )
    if head_sequence and head_hash != prev_hash:
        report.problems.append(f"{where}: head hash does not match the last entry's hash")
    stored = {
        (r.account, r.asset): r.amount
        for r in conn.execute(
            select(balances.c.account, balances.c.asset, balances.c.amount).where(
                balances.c.customer_id == customer_id
            )
        )
    }
    for key in sorted(k for k in set(stored) | set(replayed) if k[0] != WORLD):
        if type(stored.get(key, 0)) is not int:
            report.problems.append(
                f"{where}: balance {key[0]} ({key[1]}) is {stored[key]!r}, not an exact integer"
            )
        elif stored.get(key, 0) != replayed.get(key, 0):
            report.problems.append(
                f"{where}: balance {key[0]} ({key[1]}) is {stored.get(key, 0)} "
                f"but the ledger replays to {replayed.get(key, 0)}"
            )
    _check_usage(conn, customer_id, usage, report)


def _covered_prices(conn: Connection, customer_id: str) -> dict[str, tuple[str, int]]:
    """outcome_id -> (currency, unit price) of the customer's bucket-covered outcomes."""
    return {
        r.outcome_id: (r.currency, r.unit_price_nanos)
        for r in conn.execute(
            select(outcomes.c.outcome_id, outcomes.c.currency, outcomes.c.unit_price_nanos).where(
                outcomes.c.customer_id == customer_id, outcomes.c.bucket_id.is_not(None)
            )
        )
    }


def _count_usage(
    row: RowMapping, covered_prices: dict[str, tuple[str, int]], usage: dict[UsageDay, list[int]]
) -> None:
    """Add a settlement or reversal to the replayed daily counts (anything else adds nothing)."""
    slots = _COUNTED.get(row["kind"])
    if slots is None or type(row["occurred_at"]) is not int:
        return  # an edited row is reported as a hash mismatch
    if row["bucket_id"]:
        currency, price = covered_prices.get(row["outcome_id"], (row["currency"], 0))
    else:
        currency, price = row["currency"], abs(row["amount_nanos"])
    counts = usage[(row["occurred_at"] // DAY_US * DAY_US, row["outcome_type"], currency, price)]
    counts[slots[0]] += 1
    if row["bucket_id"]:
        counts[slots[1]] += 1


def _check_usage(
    conn: Connection, customer_id: str, replayed: dict[UsageDay, list[int]], report: Report
) -> None:
    where = f"customer {customer_id!r}"
    stored = {
        (r.day, r.outcome_type, r.currency, r.unit_price_nanos): [
            r.settled,
            r.reversed,
            r.covered_settled,
            r.covered_reversed,
        ]
        for r in conn.execute(select(usage_days).where(usage_days.c.customer_id == customer_id))
    }
    for key in sorted(set(stored) | set(replayed)):
        kept, expected = stored.get(key, [0, 0, 0, 0]), replayed.get(key, [0, 0, 0, 0])
        if kept != expected:
            day, outcome_type, currency, price = key
            report.problems.append(
                f"{where}: usage of {outcome_type} at {price} nanos {currency} on day "
                f"{day // DAY_US} (days since 1970-01-01) is "
                f"{dict(zip(_COUNTS, kept, strict=True))} but the ledger replays to "
                f"{dict(zip(_COUNTS, expected, strict=True))}"
            )
