"""The benchmark fixture ``bench.bulkfill`` writes a ledger the service itself accepts.

``verify`` must pass on it (chains, hashes, balanced postings, balances), the
service must carry on recording after it, and a second fill must append to the
same chains. The outcomes' times must be realistic for the reporter: within
the current month, in the past, one per customer every few seconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bulkfill import (
    DEFAULT_INTERVAL,
    OUTCOME_TYPE,
    UNIT_PRICE,
    FillResult,
    fill,
    plan_timeline,
)
from rating_service.domain.commands import OutcomeState, RecordOutcome
from rating_service.ledger.engine import create_engines
from rating_service.ledger.verify import Report, verify
from rating_service.service.store import LedgerStore

OUTCOMES = 20_000
CUSTOMERS = 50


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def verified(path: Path) -> Report:
    engines = create_engines(url(path))
    try:
        return await verify(engines)
    finally:
        await engines.dispose()


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


async def test_a_filled_ledger_verifies(tmp_path: Path) -> None:
    path = tmp_path / "filled.db"
    result = fill(path, outcomes=OUTCOMES, customers=CUSTOMERS)

    report = await verified(path)
    assert report.problems == []
    assert (report.customers, report.entries) == (CUSTOMERS, OUTCOMES)
    assert result.rows == OUTCOMES * 6  # an entry, four postings and an outcome row each
    assert query(path, "SELECT DISTINCT kind FROM ledger_entries") == [("OUTCOME_RATED",)]
    assert query(path, "SELECT state, count(*) FROM outcomes GROUP BY state") == [
        ("SETTLED", OUTCOMES)
    ]
    per_customer = OUTCOMES // CUSTOMERS
    heads = query(path, "SELECT DISTINCT head_sequence FROM customers")
    assert heads == [(per_customer,)]
    period = f"{result.last_at:%Y-%m}"
    usage = query(
        path,
        "SELECT asset, sum(amount) FROM balances"
        f" WHERE account = 'usage:{period}:outcomes' OR account = 'usage:{period}:charged'"
        " GROUP BY asset ORDER BY asset",
    )
    assert usage == [("USD", OUTCOMES * UNIT_PRICE.nanos), (f"unit:{OUTCOME_TYPE}", OUTCOMES)]
    assert all(stripe_id.startswith("cus_") for stripe_id in result.stripe_ids.values())


async def test_the_service_carries_on_after_a_fill_and_a_second_fill_appends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "carried-on.db"
    first = fill(path, outcomes=1_000, customers=10, stripe_ids=False)
    store = LedgerStore(create_engines(url(path)))
    store.start()
    try:
        now = datetime.now(UTC)
        command = RecordOutcome(
            first.customer_ids[0], "live-1", OUTCOME_TYPE, None, OutcomeState.CONFIRMED
        )
        recorded = await store.record_outcome(command, now)
    finally:
        await store.close()
    assert recorded.ledger_sequence == 101
    assert recorded.charged == UNIT_PRICE

    fill(path, outcomes=1_000, customers=10, stripe_ids=False)

    report = await verified(path)
    assert report.problems == []
    assert report.entries == 2_001
    assert query(path, "SELECT DISTINCT stripe_customer_id FROM customers") == [("",)]


def test_outcomes_fall_in_the_current_month_in_the_past(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    result: FillResult = fill(tmp_path / "times.db", outcomes=2_000, customers=100)

    assert result.interval == DEFAULT_INTERVAL
    assert result.first_at >= datetime(before.year, before.month, 1, tzinfo=UTC)
    assert result.last_at <= before
    assert result.last_at - result.first_at < 20 * DEFAULT_INTERVAL


def test_early_in_a_month_the_interval_shrinks_to_stay_in_it() -> None:
    now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    timeline = plan_timeline(1_000_000, 1_000, start=None, interval=DEFAULT_INTERVAL, now=now)

    first = timeline.at(0)
    last = timeline.at(999_999)
    month_start = datetime(2026, 12, 1, tzinfo=UTC)
    assert first == int(month_start.timestamp()) * 1_000_000
    assert last <= int((now - timedelta(minutes=1)).timestamp()) * 1_000_000
    assert timeline.interval_us < DEFAULT_INTERVAL // timedelta(microseconds=1)
