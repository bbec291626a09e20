"""A SQLite ledger has one server: a second one on the same file is refused, clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from rating_service.app import start
from rating_service.config import Settings
from rating_service.ledger.exclusive import LedgerInUse


def _settings(path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{path}", listen="127.0.0.1:0")


async def test_a_second_server_on_the_same_sqlite_file_is_refused_naming_the_holder(
    tmp_path: Path,
) -> None:
    """The first server keeps the file (and its writer's working set) to itself."""
    first = await start(_settings(tmp_path / "rating.db"))
    try:
        with pytest.raises(LedgerInUse, match=r"already served by another process \(pid \d+"):
            await start(_settings(tmp_path / "rating.db"))
        other = await start(_settings(tmp_path / "other.db"))  # another file is another ledger
        await other.stop(grace=0.5)
    finally:
        await first.stop(grace=0.5)


async def test_a_stopped_server_gives_the_file_back(tmp_path: Path) -> None:
    """Stopping releases the claim; so does the end of the process, however it ends."""
    first = await start(_settings(tmp_path / "rating.db"))
    await first.stop(grace=0.5)
    second = await start(_settings(tmp_path / "rating.db"))
    await second.stop(grace=0.5)
