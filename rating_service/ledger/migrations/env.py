"""Alembic environment: runs migrations over the service's own async engine URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from rating_service.ledger.engine import sqlite_pragmas
from rating_service.ledger.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # One transaction for the whole upgrade on SQLite too, as on PostgreSQL: a process
        # killed half way leaves the schema as it found it, and the next run starts over.
        # (A batch operation that copies a table turns foreign keys off; SQLite ignores
        # that inside a transaction, so such a migration must not rely on it.)
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
    if engine.dialect.name == "sqlite":
        sqlite_pragmas(engine.sync_engine, immediate=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


asyncio.run(_main())
