"""Every command opens the ledger one way: writers migrate it, readers refuse an outdated one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(command: str, database: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rating_service", command],
        env={"RATING_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verify_refuses_a_database_that_is_not_a_ledger_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """A mistyped path must not "verify" an empty ledger (exit 0) or leave a file behind."""
    missing = tmp_path / "typo.db"

    done = _run("verify", missing)

    assert (done.returncode, missing.exists()) == (2, False)
    assert "no ledger" in done.stderr


def test_verify_passes_once_migrate_has_made_the_ledger(tmp_path: Path) -> None:
    """``migrate`` is the writer that creates the schema; ``verify`` then reads it."""
    database = tmp_path / "rating.db"
    assert _run("migrate", database).returncode == 0

    done = _run("verify", database)

    assert done.returncode == 0, done.stderr
    assert "0 customers, 0 entries: OK" in done.stdout
