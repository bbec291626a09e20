"""What every unit of work offers its repositories: the connection, the staging, the caches."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from rating_service.domain.buckets import Bucket
from rating_service.domain.postings import bucket_account, unit_asset
from rating_service.domain.ratecard import RateCardVersion
from rating_service.ledger.executor import Executor
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.staging import BalanceKey, Staged

WORKING_SET_LIMIT = 200_000
"""Customers and (customer, outcome type) bucket lists the writer keeps between batches;
past it the working set starts again from empty, so memory stays bounded."""


@dataclass
class Caches:
    """What a write session read once and keeps for the rest of its batch.

    The SQLite writer keeps one for good (``persistent``, see ``WorkingSet``):
    every write to what it holds either goes through staging, which moves it
    in memory (chain heads, bucket balances), or forgets it (``forget_*``).
    """

    heads: dict[str, CustomerHead] = field(default_factory=dict)
    versions: dict[str, tuple[list[int], list[RateCardVersion]]] = field(default_factory=dict)
    buckets: dict[str, dict[str, tuple[int, list[Bucket]]]] = field(default_factory=dict)
    """Per customer, per outcome type: (since when, in microseconds; those unexpired then)."""
    persistent: bool = False

    def clear(self) -> None:
        self.heads.clear()
        self.versions.clear()
        self.buckets.clear()

    def forget_customer(self, customer_id: str) -> None:
        """The customer's row or buckets changed outside staging."""
        self.heads.pop(customer_id, None)
        self.buckets.pop(customer_id, None)

    def forget_card(self, rate_card_id: str) -> None:
        self.versions.pop(rate_card_id, None)

    def add_deltas(self, deltas: Mapping[BalanceKey, int]) -> None:
        """Write through: the balance changes about to be written, onto the buckets held."""
        if not deltas or not self.buckets:
            return
        for customer_id in {customer_id for customer_id, _, _ in deltas}:
            for outcome_type, (_, found) in self.buckets.get(customer_id, {}).items():
                self._add_to(customer_id, outcome_type, found, deltas)

    @staticmethod
    def _add_to(
        customer_id: str, outcome_type: str, found: list[Bucket], deltas: Mapping[BalanceKey, int]
    ) -> None:
        asset = unit_asset(outcome_type)
        for index, bucket in enumerate(found):
            available = deltas.get(
                (customer_id, bucket_account(bucket.bucket_id, "available"), asset), 0
            )
            held = deltas.get((customer_id, bucket_account(bucket.bucket_id, "held"), asset), 0)
            if available or held:
                found[index] = dataclasses.replace(
                    bucket, remaining=bucket.remaining + available, held=bucket.held + held
                )


class WorkingSet:
    """The SQLite writer's customers, rate cards and unexpired buckets, kept between batches.

    SQLite has one writer connection per process, so what it wrote it can
    remember instead of reading it back. It lives with that connection (all
    writers of the process share it) and starts empty, filling from the
    database on first use. It is dropped whenever it may differ from the
    database: a batch that did not commit (or went the careful way, savepoint
    by savepoint), and a commit by any other connection, which SQLite's
    ``data_version`` reveals at the start of each batch. ``serve`` keeps one
    only while it holds the lock beside the file (``exclusive``).
    """

    def __init__(self) -> None:
        self.caches = Caches(persistent=True)
        self._data_version: int | None = None

    @staticmethod
    def of(conn: Connection) -> WorkingSet | None:
        """The working set of this SQLite writer connection (None on PostgreSQL)."""
        raw = conn.connection.driver_connection
        if not isinstance(raw, sqlite3.Connection):
            return None
        info = conn.connection.info
        found = info.get("working_set")
        if not isinstance(found, WorkingSet):
            found = info["working_set"] = WorkingSet()
        found._check(raw)
        return found

    def _check(self, raw: sqlite3.Connection) -> None:
        """Forget everything if another connection committed since the last batch (call it
        with the write lock held, so nobody else can commit until this batch has)."""
        (version,) = raw.execute("PRAGMA data_version").fetchone()
        caches = self.caches
        if version != self._data_version or len(caches.heads) + len(caches.buckets) > (
            WORKING_SET_LIMIT
        ):
            caches.clear()
        self._data_version = version

    def forget(self) -> None:
        """The database may differ from memory (a rollback, a careful batch)."""
        self.caches.clear()


class Unit:
    """What repositories need of a unit of work."""

    staged: Staged | None = None
    """The write session's staging (None on a read snapshot)."""
    caches: Caches | None = None

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.sql = Executor(conn)
        """For statements whose tables staging never touches, or that consult it themselves."""
        self.dialect = conn.dialect.name

    def db(self) -> Executor:
        """For any other read: the database with everything staged written out."""
        return self.sql

    def db_write(self) -> Executor:
        """For a statement that changes the database itself (not through staging)."""
        return self.sql

    def customer_changed(self, customer_id: str) -> None:
        """A statement (not staging) changed the customer's row or its buckets."""
        if self.caches is not None:
            self.caches.forget_customer(customer_id)

    def rate_card_changed(self, rate_card_id: str) -> None:
        """A statement added a version of the card."""
        if self.caches is not None:
            self.caches.forget_card(rate_card_id)
