"""``bench.pages_per_commit`` counts the pages each commit of the settled-outcome floor writes.

The count is what judges a storage layout, so it must follow what a commit
really writes: more rows, more pages; an extra index, more pages; and the
ledger it appends to must stay one that ``verify`` accepts.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from bench.bulkfill import fill
from bench.sqlite_yardstick import CommitPages, measure_commit_pages
from rating_service.ledger.engine import create_engines
from rating_service.ledger.verify import verify

CUSTOMERS = 20
OUTCOMES = 200


def pages(path: Path, *, extra_index: str = "", outcomes: int = OUTCOMES) -> CommitPages:
    """A fresh ledger (its schema and customers), maybe an index more, then three commits."""
    measure_commit_pages(path, 0, customers=CUSTOMERS)
    if extra_index:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(extra_index)
    return measure_commit_pages(
        path, 3, outcomes_per_transaction=outcomes, customers=CUSTOMERS, existing=True
    )


def test_a_commit_of_more_outcomes_writes_more_pages(tmp_path: Path) -> None:
    few = pages(tmp_path / "few.db", outcomes=10)
    many = pages(tmp_path / "many.db", outcomes=OUTCOMES)

    assert 0 < few.median_pages < many.median_pages
    assert len(many.pages) == len(many.commit_seconds) == len(many.checkpoint_seconds) == 3


def test_an_index_more_is_pages_more(tmp_path: Path) -> None:
    plain = pages(tmp_path / "plain.db")
    indexed = pages(
        tmp_path / "indexed.db",
        extra_index="CREATE INDEX ix_by_account ON ledger_postings (account, customer_id)",
    )

    assert indexed.median_pages > plain.median_pages


async def test_the_ledger_appended_to_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "filled.db"
    fill(path, outcomes=1_000, customers=CUSTOMERS)

    measure_commit_pages(
        path, 2, warmup=1, outcomes_per_transaction=OUTCOMES, customers=CUSTOMERS, existing=True
    )

    engines = create_engines(f"sqlite+aiosqlite:///{path}")
    try:
        report = await verify(engines)
    finally:
        await engines.dispose()
    assert report.problems == []
    assert report.entries == 1_000 + 3 * OUTCOMES


def test_smaller_pages_are_more_pages_of_fewer_bytes(tmp_path: Path) -> None:
    default = measure_commit_pages(
        tmp_path / "4k.db", 3, outcomes_per_transaction=OUTCOMES, customers=CUSTOMERS
    )
    small = measure_commit_pages(
        tmp_path / "1k.db",
        3,
        page_size=1024,
        outcomes_per_transaction=OUTCOMES,
        customers=CUSTOMERS,
    )

    assert (default.page_size, small.page_size) == (4096, 1024)
    assert small.median_pages > default.median_pages
    assert small.median_kib < default.median_kib
