"""What a write transaction has staged but not yet written, and how to take a job's part back.

A group-commit batch records hundreds of outcomes in one transaction. Written
one by one, each costs about ten statements; staged here, the batch costs one
``executemany`` per table, the customers' chain heads move in memory, and
balance changes are summed per account before they touch the database.

Each job of a batch begins with ``begin_job``; a job refused after it staged something
is taken back (``undo_job``), so its rows never reach the database
and its neighbours' rows still do. Once a job's staged rows have been written
out (a statement that had to see them ran), memory cannot take them back:
``undo_job`` says so, and the writer redoes the batch with a savepoint per job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from typing import Any, NamedTuple

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from rating_service.domain.billing import UsageCounts, usage_of
from rating_service.domain.postings import WORLD, Transaction
from rating_service.ledger.append import ENTRY_COLUMNS, entry_values
from rating_service.ledger.codec import to_micros
from rating_service.ledger.executor import Executor
from rating_service.ledger.hashing import GENESIS
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.schema import (
    balances,
    customers,
    ledger_entries,
    ledger_postings,
    usage_days,
)

BalanceKey = tuple[str, str, str]
"""(customer_id, account, asset)"""
UsageDayKey = tuple[str, int, str, str, int]
"""(customer_id, day in microseconds, outcome_type, currency, unit_price_nanos)"""


def _upsert(dialect: Any) -> Executable:
    statement = dialect.insert(balances)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[balances.c.customer_id, balances.c.account, balances.c.asset],
        set_={"amount": balances.c.amount + statement.excluded.amount},
    )
    return upsert


def _count(dialect: Any) -> Executable:
    statement = dialect.insert(usage_days)
    c = usage_days.c
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[c.customer_id, c.day, c.outcome_type, c.currency, c.unit_price_nanos],
        set_={
            name: c[name] + statement.excluded[name]
            for name in ("settled", "reversed", "covered_settled", "covered_reversed")
        },
    )
    return upsert


# Built once: building a statement costs more than running it.
_ADD_TO_BALANCES = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}
_ADD_TO_USAGE_DAYS = {"postgresql": _count(postgresql), "sqlite": _count(sqlite)}
_INSERT_ENTRIES = ledger_entries.insert()
_INSERT_POSTINGS = ledger_postings.insert()
POSTING_COLUMNS = ("customer_id", "sequence", "position", "account", "asset", "amount")
_BALANCE_COLUMNS = ("customer_id", "account", "asset", "amount")
_USAGE_COLUMNS = (
    "customer_id",
    "day",
    "outcome_type",
    "currency",
    "unit_price_nanos",
    "settled",
    "reversed",
    "covered_settled",
    "covered_reversed",
)
_MOVE_HEADS = (
    update(customers)
    .where(customers.c.customer_id == bindparam("id"))
    .values(head_sequence=bindparam("sequence"), head_hash=bindparam("hash"))
)


_NONE = UsageCounts()


class _Mark(NamedTuple):
    """Where the current job began: how much was staged before it (a tuple: one per job)."""

    entries: int = 0
    postings: int = 0
    moves: int = 0
    rows: int = 0
    counts: int = 0


class Staged:
    """The batch's appends and new rows, in memory until ``flush``."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        """Rows of ``ledger_entries`` (``ENTRY_COLUMNS``): tuples, as the driver takes them."""
        self.postings: list[tuple[str, int, int, str, str, int]] = []
        """Rows of ``ledger_postings`` (``POSTING_COLUMNS``)."""
        self.deltas: dict[BalanceKey, int] = defaultdict(int)
        self.usage: dict[UsageDayKey, UsageCounts] = {}
        """Daily usage counts added by the staged settlements and reversals (``billing``)."""
        self._counted: list[tuple[UsageDayKey, UsageCounts]] = []
        """Each count as staged, in order: undo's journal."""
        self.heads: dict[str, CustomerHead] = {}
        """Chain heads read by this batch (staged appends moved them)."""
        self._moved: dict[str, CustomerHead] = {}
        self._moves: list[tuple[CustomerHead, int, str, bool]] = []
        """(head, sequence and hash before, whether it had moved before): undo's journal."""
        self._rows: list[tuple[Executable, dict[str, Any], Hashable]] = []
        """New rows of other tables (outcomes), written after the entries they refer to."""
        self._by_key: dict[tuple[int, Hashable], dict[str, Any]] = {}
        self._mark = _Mark()
        self._job_written = False
        """Something of the current job reached the database: memory cannot take it back."""

    # ---- staging ------------------------------------------------------------------------

    def append(self, head: CustomerHead, tx: Transaction, recorded_at: int) -> int:
        """Append ``tx`` to ``head``'s chain and return its sequence; ``head`` moves with it."""
        sequence = head.head_sequence + 1
        customer_id = head.customer_id
        row = entry_values(customer_id, sequence, head.head_hash or GENESIS, tx, recorded_at)
        self.entries.append(row)
        postings, deltas = self.postings, self.deltas
        for position, p in enumerate(tx.postings):
            account, asset, amount = p.account, p.asset, p.amount
            postings.append((customer_id, sequence, position, account, asset, amount))
            if account != WORLD:  # the outside world's balance is never kept (see WORLD)
                deltas[(customer_id, account, asset)] += amount
        usage = usage_of(tx)
        if usage is not None:
            key, counts = usage
            price = key.unit_price
            day_key = (
                customer_id,
                to_micros(key.day),
                key.outcome_type,
                price.currency,
                price.nanos,
            )
            self.usage[day_key] = self.usage.get(day_key, _NONE) + counts
            self._counted.append((day_key, counts))
        self._moves.append((head, head.head_sequence, head.head_hash, customer_id in self._moved))
        head.head_sequence = sequence
        head.head_hash = row[-1]
        self.heads[customer_id] = head
        self._moved[customer_id] = head
        return sequence

    def add_row(self, insert: Executable, key: Hashable, row: dict[str, Any]) -> None:
        """Stage a new row of another table (written after the ledger's own rows)."""
        self._rows.append((insert, row, key))
        self._by_key[(id(insert), key)] = row

    def staged_row(self, insert: Executable, key: Hashable) -> dict[str, Any] | None:
        """The row of ``insert`` staged under ``key``, if any."""
        return self._by_key.get((id(insert), key))

    # ---- a job's part ---------------------------------------------------------------------

    def begin_job(self) -> None:
        """What is staged from now on belongs to the next job, until the next ``begin_job``."""
        self._mark = _Mark(
            len(self.entries),
            len(self.postings),
            len(self._moves),
            len(self._rows),
            len(self._counted),
        )
        self._job_written = False

    def job_wrote_directly(self) -> None:
        """The current job changed the database itself (not through staging)."""
        self._job_written = True

    def undo_job(self) -> bool:
        """Take back what the current job staged; False when some of it was written out."""
        if self._job_written:
            return False
        mark = self._mark
        for customer_id, _, _, account, asset, amount in self.postings[mark.postings :]:
            if account == WORLD:
                continue
            key = (customer_id, account, asset)
            self.deltas[key] -= amount
            if not self.deltas[key]:
                del self.deltas[key]
        for day_key, counts in self._counted[mark.counts :]:
            self.usage[day_key] = self.usage[day_key] + -counts
            if self.usage[day_key] == _NONE:
                del self.usage[day_key]
        del self._counted[mark.counts :]
        del self.entries[mark.entries :]
        del self.postings[mark.postings :]
        for insert, _, row_key in self._rows[mark.rows :]:
            del self._by_key[(id(insert), row_key)]
        del self._rows[mark.rows :]
        for head, sequence, hash_, had_moved in reversed(self._moves[mark.moves :]):
            head.head_sequence, head.head_hash = sequence, hash_
            if not had_moved:
                self._moved.pop(head.customer_id, None)
        del self._moves[mark.moves :]
        return True

    # ---- writing out ----------------------------------------------------------------------

    def flush(self, sql: Executor, dialect: str) -> None:
        """Write everything staged: one statement per table."""
        if not (self.entries or self._rows or self._moved):
            return
        mark = self._mark
        if (len(self.entries), len(self._rows), len(self._moves)) != (
            mark.entries,
            mark.rows,
            mark.moves,
        ):
            self._job_written = True
        sql.many_values(_INSERT_ENTRIES, ENTRY_COLUMNS, self.entries)
        sql.many_values(_INSERT_POSTINGS, POSTING_COLUMNS, self.postings)
        # Sorted, so concurrent transactions on PostgreSQL lock balance rows in one order.
        sql.many_values(
            _ADD_TO_BALANCES[dialect],
            _BALANCE_COLUMNS,
            [(*key, amount) for key, amount in sorted(self.deltas.items())],
        )
        sql.many_values(
            _ADD_TO_USAGE_DAYS[dialect],
            _USAGE_COLUMNS,
            [
                (*key, c.settled, c.reversed, c.covered_settled, c.covered_reversed)
                for key, c in sorted(self.usage.items())
            ],
        )
        by_table: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
        for insert, row, _ in self._rows:
            by_table.setdefault(id(insert), (insert, []))[1].append(row)
        for insert, rows in by_table.values():
            sql.many(insert, rows)
        sql.many(
            _MOVE_HEADS,
            [
                {"id": h.customer_id, "sequence": h.head_sequence, "hash": h.head_hash}
                for h in self._moved.values()
            ],
        )
        self.entries.clear()
        self.postings.clear()
        self.deltas.clear()
        self.usage.clear()
        self._counted.clear()
        self._rows.clear()
        self._by_key.clear()
        self._moved.clear()
        self._moves.clear()
        self._mark = _Mark()
