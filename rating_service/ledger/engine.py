"""Database engines: durable SQLite (WAL, synchronous=FULL) or PostgreSQL.

Work on the database is a synchronous function of a connection, run by a
``BatchRunner`` so that its statements cost no trip through the event loop
each. Writes: for SQLite a dedicated thread with its own connection that
begins ``IMMEDIATE`` (it takes the write lock up front instead of failing half
way); for PostgreSQL ``run_sync`` over the asyncpg pool. Reads see a snapshot
and never wait for writes: for SQLite a few threads with their own
connections (the API's short reads on one of their own), for PostgreSQL the
same pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import (
    Connection as Connection,  # re-exported: the type of a unit of database work
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


class BatchRunner(Protocol):
    """Runs a synchronous function of a database connection on behalf of async code."""

    async def run(self, work: Callable[[Connection], T]) -> T: ...

    async def close(self) -> None: ...


class ThreadRunner:
    """A connection per thread: SQLite's work without an event-loop hop per statement."""

    def __init__(self, engine: Engine, *, threads: int, name: str) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    def _call(self, work: Callable[[Connection], T]) -> T:
        with self._engine.connect() as conn:
            return work(conn)

    async def run(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, work)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=True)


class AsyncRunner:
    """Synchronous work over an async pool (asyncpg), through SQLAlchemy's ``run_sync``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(work)

    async def close(self) -> None:
        """The pool is the reader's too; ``Engines.dispose`` closes it."""


@dataclass(frozen=True)
class Engines:
    reader: AsyncEngine
    """For the few reads that stream or want an async connection (``verify``)."""
    reads: BatchRunner
    """Long reads: reports, the reporter's and reconciliation's."""
    writer: BatchRunner
    short_reads: BatchRunner | None = None
    """The API's short reads (a quote, a balance, a page): on SQLite a thread of their
    own (``SHORT_READ_THREADS``), so no long read holds one up; None: ``reads``."""

    @property
    def dialect(self) -> str:
        return self.reader.dialect.name

    async def dispose(self) -> None:
        await self.writer.close()
        if self.short_reads is not None:
            await self.short_reads.close()
        await self.reads.close()
        await self.reader.dispose()


WRITER_CACHE_PRAGMA = "PRAGMA cache_size=-65536"
"""64 MiB of page cache for the writer: the ledger's indexes stay in memory as they grow."""


def sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    """Durable SQLite (WAL, synchronous=FULL) whose transactions are real: SQLAlchemy's
    ``begin`` sends BEGIN (IMMEDIATE for a writer), so DDL is transactional too (the
    ``sqlite3`` module on its own would begin only before DML, and run DDL unprotected)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS + ((WRITER_CACHE_PRAGMA,) if immediate else ()):
            cursor.execute(pragma)
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver: SQLAlchemy's statement machinery, events and result
        # cost more than the BEGIN itself, once per transaction (every read and batch).
        raw = connection.connection.dbapi_connection
        assert raw is not None, "a connection being begun is open"
        raw.cursor().execute(begin)


READ_THREADS = 3
"""SQLite reads release the GIL while SQLite works; a few threads keep one slow read
(a reconciliation) from holding up the others."""
SHORT_READ_THREADS = 1
"""The API's short reads share one thread: each is a few statements of tens of
microseconds, and threads that take turns at the one interpreter lock after every
statement cost more CPU than they save (``bench.read_cost``: a quote took 50 to 80%
more CPU on three threads than on one)."""


def create_engines(url: str) -> Engines:
    if url.startswith("sqlite"):
        reader = create_async_engine(url)
        sqlite_pragmas(reader.sync_engine, immediate=False)
        sync_url = url.replace("+aiosqlite", "", 1)
        reads = create_engine(sync_url, pool_size=READ_THREADS, max_overflow=0)
        sqlite_pragmas(reads, immediate=False)
        short_reads = create_engine(sync_url, pool_size=SHORT_READ_THREADS, max_overflow=0)
        sqlite_pragmas(short_reads, immediate=False)
        writer = create_engine(sync_url, pool_size=1, max_overflow=0)
        sqlite_pragmas(writer, immediate=True)
        return Engines(
            reader=reader,
            reads=ThreadRunner(reads, threads=READ_THREADS, name="ledger-reader"),
            writer=ThreadRunner(writer, threads=1, name="ledger-writer"),
            short_reads=ThreadRunner(
                short_reads, threads=SHORT_READ_THREADS, name="ledger-short-reader"
            ),
        )
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Engines(reader=engine, reads=AsyncRunner(engine), writer=AsyncRunner(engine))
