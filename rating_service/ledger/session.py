"""One write transaction's unit of work: appends are staged, then written table by table.

A group-commit batch records hundreds of outcomes in one transaction. Written
one by one, each costs about ten statements; staged here, the batch costs one
``executemany`` per table, the customers' chain heads move in memory, and
balance changes are summed per account before they touch the database.

What a job reads through the session sees what it and the jobs before it in
the batch staged (chain heads, outcomes, bucket balances). Anything else
reaches the database through ``conn``, which writes out everything staged
first and forgets what it had cached, so a raw statement never sees a stale
database and the session never trusts a row a raw statement may have changed.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable

from rating_service.domain.buckets import Bucket
from rating_service.domain.postings import Transaction, bucket_account, unit_asset
from rating_service.domain.ratecard import RateCardVersion
from rating_service.ledger.append import entry_row
from rating_service.ledger.codec import to_micros
from rating_service.ledger.executor import Executor, RowLike
from rating_service.ledger.hashing import GENESIS
from rating_service.ledger.reads import (
    CustomerHead,
    load_customer,
    load_unexpired_buckets,
    load_versions,
    lock_customers,
)
from rating_service.ledger.schema import (
    balances,
    customers,
    ledger_entries,
    ledger_postings,
    outcomes,
)


def _upsert(dialect: Any) -> Executable:
    statement = dialect.insert(balances)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[balances.c.customer_id, balances.c.account, balances.c.asset],
        set_={"amount": balances.c.amount + statement.excluded.amount},
    )
    return upsert


# Built once: building a statement costs more than running it.
_ADD_TO_BALANCES = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}
_INSERT_ENTRIES = ledger_entries.insert()
_INSERT_POSTINGS = ledger_postings.insert()
_INSERT_OUTCOMES = outcomes.insert()
_MOVE_HEADS = (
    update(customers)
    .where(customers.c.customer_id == bindparam("id"))
    .values(head_sequence=bindparam("sequence"), head_hash=bindparam("hash"))
)
_OUTCOME = select(outcomes).where(
    outcomes.c.customer_id == bindparam("customer_id"),
    outcomes.c.outcome_id == bindparam("outcome_id"),
)

BalanceKey = tuple[str, str, str]
"""(customer_id, account, asset)"""


class WriteSession:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sql = Executor(conn)
        self._heads: dict[str, CustomerHead] = {}
        self._moved: dict[str, CustomerHead] = {}
        self._entries: list[dict[str, Any]] = []
        self._postings: list[dict[str, Any]] = []
        self._deltas: dict[BalanceKey, int] = defaultdict(int)
        self._outcomes: dict[tuple[str, str], dict[str, Any]] = {}
        self._versions: dict[str, tuple[list[int], list[RateCardVersion]]] = {}
        self._buckets: dict[tuple[str, str], tuple[int, list[Bucket]]] = {}

    @property
    def conn(self) -> Connection:
        """The connection, for any statement the session has no method for.

        Everything staged is written first and every cache is dropped, so the
        statement sees the whole batch so far and may change any row.
        """
        self.flush()
        self._heads.clear()
        self._versions.clear()
        self._buckets.clear()
        return self._conn

    @property
    def dialect(self) -> str:
        return self._conn.dialect.name

    def lock_customers(self, customer_ids: Iterable[str]) -> None:
        """Take the customers' row locks up front, in id order (PostgreSQL; SQLite's
        IMMEDIATE transaction already holds the whole database).

        A batch that locked each customer when its job first needed it would
        lock them in arrival order, and two replicas would deadlock.
        """
        if self.dialect != "postgresql":
            return
        for head in lock_customers(self._sql, customer_ids):
            self._heads.setdefault(head.customer_id, head)

    # ---- reads that see what the batch staged ------------------------------------------

    def customer(self, customer_id: str) -> CustomerHead:
        """The customer and its chain head (locked on PostgreSQL until COMMIT)."""
        head = self._heads.get(customer_id)
        if head is None:
            head = load_customer(self._sql, customer_id, for_update=True)
            self._heads[customer_id] = head
        return head

    def outcome(self, customer_id: str, outcome_id: str) -> RowLike | None:
        """The outcome's row, staged or stored."""
        staged = self._outcomes.get((customer_id, outcome_id))
        if staged is not None:
            return staged
        return self._sql.first(_OUTCOME, {"customer_id": customer_id, "outcome_id": outcome_id})

    def version_in_force(self, rate_card_id: str, at: datetime) -> RateCardVersion | None:
        """The newest version of the card with ``effective_from <= at``."""
        if not rate_card_id:
            return None
        cached = self._versions.get(rate_card_id)
        if cached is None:
            versions = load_versions(self._sql, rate_card_id)
            cached = ([to_micros(v.effective_from) for v in versions], versions)
            self._versions[rate_card_id] = cached
        starts, versions = cached
        index = bisect.bisect_right(starts, to_micros(at))
        return versions[index - 1] if index else None

    def unexpired_buckets(self, customer_id: str, outcome_type: str, at: datetime) -> list[Bucket]:
        """Buckets of the type not expired at ``at``, with the batch's draws applied."""
        key = (customer_id, outcome_type)
        micros = to_micros(at)
        cached = self._buckets.get(key)
        if cached is None or micros < cached[0]:
            cached = (micros, load_unexpired_buckets(self._sql, customer_id, outcome_type, at))
            self._buckets[key] = cached
        asset = unit_asset(outcome_type)
        found: list[Bucket] = []
        for bucket in cached[1]:
            if bucket.valid_until <= at:
                continue
            available = self._deltas.get(
                (customer_id, bucket_account(bucket.bucket_id, "available"), asset), 0
            )
            held = self._deltas.get(
                (customer_id, bucket_account(bucket.bucket_id, "held"), asset), 0
            )
            if available or held:
                bucket = dataclasses.replace(
                    bucket, remaining=bucket.remaining + available, held=bucket.held + held
                )
            found.append(bucket)
        return found

    # ---- writes, staged ------------------------------------------------------------------

    def append(self, head: CustomerHead, tx: Transaction, recorded_at: int) -> int:
        """Append ``tx`` to ``head``'s chain and return its sequence; ``head`` moves with it."""
        sequence = head.head_sequence + 1
        customer_id = head.customer_id
        row = entry_row(customer_id, sequence, head.head_hash or GENESIS, tx, recorded_at)
        self._entries.append(row)
        for position, p in enumerate(tx.postings):
            self._postings.append(
                {
                    "customer_id": customer_id,
                    "sequence": sequence,
                    "position": position,
                    "account": p.account,
                    "asset": p.asset,
                    "amount": p.amount,
                }
            )
            self._deltas[(customer_id, p.account, p.asset)] += p.amount
        head.head_sequence = sequence
        head.head_hash = row["hash"]
        self._heads[customer_id] = head
        self._moved[customer_id] = head
        return sequence

    def add_outcome(self, row: dict[str, Any]) -> None:
        """Stage a new ``outcomes`` row (its key must not exist: the caller looked)."""
        self._outcomes[(row["customer_id"], row["outcome_id"])] = row

    # ---- writing out ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything staged: one statement per table."""
        if not (self._entries or self._outcomes or self._moved):
            return
        sql = self._sql
        sql.many(_INSERT_ENTRIES, self._entries)
        sql.many(_INSERT_POSTINGS, self._postings)
        # Sorted, so concurrent transactions on PostgreSQL lock balance rows in one order.
        sql.many(
            _ADD_TO_BALANCES[self.dialect],
            [
                {"customer_id": c, "account": a, "asset": s, "amount": amount}
                for (c, a, s), amount in sorted(self._deltas.items())
            ],
        )
        sql.many(_INSERT_OUTCOMES, list(self._outcomes.values()))
        sql.many(
            _MOVE_HEADS,
            [
                {"id": h.customer_id, "sequence": h.head_sequence, "hash": h.head_hash}
                for h in self._moved.values()
            ],
        )
        self._entries.clear()
        self._postings.clear()
        self._deltas.clear()
        self._outcomes.clear()
        self._moved.clear()
        self._buckets.clear()  # their balances were read before the deltas now written
