"""Database engines: durable SQLite (WAL, synchronous=FULL) or PostgreSQL.

SQLite gets two engines: the writer's begins ``IMMEDIATE`` (it takes the write
lock up front instead of failing half way), the readers' plain deferred
transactions read a snapshot concurrently in WAL mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


@dataclass(frozen=True)
class Engines:
    writer: AsyncEngine
    reader: AsyncEngine

    @property
    def is_sqlite(self) -> bool:
        return self.writer.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _sqlite_engine(url: str, *, immediate: bool) -> AsyncEngine:
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_engines(url: str) -> Engines:
    if url.startswith("sqlite"):
        return Engines(
            writer=_sqlite_engine(url, immediate=True),
            reader=_sqlite_engine(url, immediate=False),
        )
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Engines(writer=engine, reader=engine)
