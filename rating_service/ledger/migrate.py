"""Schema migrations (Alembic), applied by ``rating-service migrate`` and at ``serve`` start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision (Alembic runs its own loop, so in a thread)."""
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")


class SchemaNotCurrent(Exception):
    """The database's schema is not the newest revision (or there is no ledger there at all)."""


async def require_current(database_url: str) -> None:
    """Refuse a database whose schema ``migrate`` has not brought to the newest revision.

    For the commands that only read the ledger: they must not create or change
    one, and a mistyped URL must not "verify" an empty ledger.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = make_url(database_url)
    path = url.database if url.get_backend_name() == "sqlite" else None
    # Connecting to a missing SQLite file would create an empty one.
    if path not in (None, "", ":memory:") and not await asyncio.to_thread(Path(path).exists):
        raise SchemaNotCurrent(f"there is no ledger at {path}")
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    if current != head:
        found = f"revision {current}" if current else "no ledger schema"
        raise SchemaNotCurrent(
            f"the database has {found}, not the newest ({head}); run `rating-service migrate`"
        )
