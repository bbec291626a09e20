"""Units of work: a write transaction (``WriteSession``) or a read snapshot (``ReadSession``).

Each carries the repositories (``customers``, ``rate_cards``, ``buckets``,
``outcomes``, ``consumptions``, ``history``, ``spend``, ``usage``, ``stripe_reports``) that
own every statement and
codec; the service layer asks them for domain values and never sees SQL.

A write session stages appends (see ``staging``). Reads through its
repositories see what the batch staged, with no ritual: the hot reads (chain
heads, outcomes, rate cards, drawable buckets) consult the staging directly,
and any other statement first writes out what is staged and forgets what the
session cached, so it never sees a stale database and the session never
trusts a row that statement may have changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.engine import Connection

from rating_service.domain.postings import Transaction
from rating_service.domain.spend import Alert
from rating_service.ledger.codec import to_micros
from rating_service.ledger.executor import Executor
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.repositories.buckets import Buckets
from rating_service.ledger.repositories.consumptions import Consumptions
from rating_service.ledger.repositories.customers import Customers
from rating_service.ledger.repositories.history import History
from rating_service.ledger.repositories.outcomes import Outcomes
from rating_service.ledger.repositories.rate_cards import RateCards
from rating_service.ledger.repositories.spend import Spend
from rating_service.ledger.repositories.stripe_reports import StripeReports
from rating_service.ledger.repositories.usage import Usage
from rating_service.ledger.staging import Staged
from rating_service.ledger.unit import Caches, Unit


class _WithRepositories(Unit):
    """A unit of work with its repositories, the only way the service layer reaches the data."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.customers = Customers(self)
        self.rate_cards = RateCards(self)
        self.buckets = Buckets(self)
        self.outcomes = Outcomes(self)
        self.consumptions = Consumptions(self)
        self.history = History(self)
        self.spend = Spend(self)

        self.usage = Usage(self)
        self.stripe_reports = StripeReports(self)


class ReadSession(_WithRepositories):
    """One snapshot: every statement of a read sees the same database."""


class WriteSession(_WithRepositories):
    """One write transaction of a group-commit batch, shared by the batch's jobs in turn."""

    def __init__(self, conn: Connection, caches: Caches | None = None) -> None:
        """``caches``: the writer's working set, kept past this batch (see ``WorkingSet``)."""
        self._staged = self.staged = Staged()
        self._caches = self.caches = Caches() if caches is None else caches
        self.alerts_raised: list[Alert] = []
        """Alerts this transaction raised, for what runs once it has committed (see store)."""
        super().__init__(conn)

    @property
    def conn(self) -> Connection:
        """The raw connection, for statements no repository has.

        Staged writes are written out first and caches dropped, as for ``db``;
        a statement run on it counts as the current job's own write, and may
        change anything, so the working set is dropped too.
        """
        self.db_write()
        self._caches.clear()
        return self._conn

    @property
    def stripe_conn(self) -> Connection:
        """The raw connection, for the reporter's bookkeeping alone: the ``stripe_*``
        tables and the ``stripe_*`` columns of buckets (``ledger/outbox``).

        As ``conn``, but the working set is kept: it holds none of those, and a
        reporter that dropped it with every job would have the next calls of the
        API read back every head, rate card and bucket list they touch.
        """
        self.db_write()
        return self._conn

    def db(self) -> Executor:
        self.flush()
        if not self._caches.persistent:
            self._caches.clear()
        return self.sql

    def db_write(self) -> Executor:
        sql = self.db()
        self._staged.job_wrote_directly()
        return sql

    def flush(self) -> None:
        """Write everything staged: one statement per table."""
        if self._caches.persistent:
            self._caches.add_deltas(self._staged.deltas)  # written through, as the rows are
        else:
            self._caches.buckets.clear()  # their balances were read before the deltas written
        self._staged.flush(self.sql, self.dialect)

    def lock_customers(self, customer_ids: Iterable[str]) -> None:
        """Take the customers' row locks up front, in id order (PostgreSQL; SQLite's
        IMMEDIATE transaction already holds the whole database).

        A batch that locked each customer when its job first needed it would
        lock them in arrival order, and two replicas would deadlock.
        """
        self.customers.lock(customer_ids)

    def append(self, head: CustomerHead, tx: Transaction, now: datetime) -> int:
        """Append ``tx`` to ``head``'s chain and return its sequence; ``head`` moves with it."""
        return self._staged.append(head, tx, to_micros(now))

    def begin_job(self) -> None:
        self._staged.begin_job()

    def undo_job(self) -> bool:
        """Take back the current job's staged writes (see ``Staged.undo_job``)."""
        return self._staged.undo_job()
