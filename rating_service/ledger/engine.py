"""Database engines: durable SQLite (WAL, synchronous=FULL) or PostgreSQL.

Reads go through an async engine (aiosqlite or asyncpg) and see a snapshot
without waiting for writes. Writes go through a ``BatchRunner``: for SQLite a
dedicated thread with its own synchronous connection that begins ``IMMEDIATE``
(it takes the write lock up front instead of failing half way), for
PostgreSQL ``run_sync`` over the asyncpg pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
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
    """One thread, one connection: SQLite's single writer, without an event-loop hop per statement."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")

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
    writer: BatchRunner

    @property
    def dialect(self) -> str:
        return self.reader.dialect.name

    async def dispose(self) -> None:
        await self.writer.close()
        await self.reader.dispose()


WRITER_CACHE_PRAGMA = "PRAGMA cache_size=-65536"
"""64 MiB of page cache for the writer: the ledger's indexes stay in memory as they grow."""


def _sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS + ((WRITER_CACHE_PRAGMA,) if immediate else ()):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engines(url: str) -> Engines:
    if url.startswith("sqlite"):
        reader = create_async_engine(url)
        _sqlite_pragmas(reader.sync_engine, immediate=False)
        writer = create_engine(url.replace("+aiosqlite", "", 1), pool_size=1, max_overflow=0)
        _sqlite_pragmas(writer, immediate=True)
        return Engines(reader=reader, writer=ThreadRunner(writer))
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Engines(reader=engine, writer=AsyncRunner(engine))
