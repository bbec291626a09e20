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
