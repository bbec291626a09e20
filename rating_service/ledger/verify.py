"""Replay every customer's chain and prove nobody edited the ledger out of band.

Checks: a gap-free sequence from 1 to the customer's head, each entry's
``prev_hash`` and recomputed ``hash``, postings that sum to zero per asset, and
every stored balance equal to the replayed one.
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
from rating_service.ledger.schema import balances, customers

PAGE = 1000


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
