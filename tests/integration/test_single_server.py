"""The first server of a SQLite ledger claims it; a second one serves without a working set."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rating_service.app import start
from rating_service.config import Settings
from rating_service.domain.commands import OutcomeState, PutCustomer, PutRateCard, RecordOutcome
from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price
from rating_service.ledger.exclusive import LedgerInUse, claim_ledger

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _settings(path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{path}", listen="127.0.0.1:0")


def _outcome(outcome_id: str) -> RecordOutcome:
    return RecordOutcome("acme", outcome_id, "resolution", None, OutcomeState.CONFIRMED)


async def test_the_lock_beside_the_file_is_held_by_one_claim_at_a_time(tmp_path: Path) -> None:
    """A second claim names the holder's pid; released, the file can be claimed again."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}"
    first = claim_ledger(url)
    assert first is not None
    with pytest.raises(LedgerInUse, match=r"already served by another process \(pid \d+"):
        claim_ledger(url)
    assert claim_ledger(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}") is not None
    first.release()
    again = claim_ledger(url)
    assert again is not None
    again.release()
    assert claim_ledger("postgresql+asyncpg://nobody@127.0.0.1/ledger") is None


async def test_a_second_server_on_the_same_file_serves_without_a_working_set_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both serve one ledger: the first sees the second's commits (a new price) instead of
    what it held."""
    caplog.set_level(logging.WARNING)
    first = await start(_settings(tmp_path / "rating.db"))
    try:
        price = Price("resolution", Money.of("0.99", "USD"), timedelta(hours=1))
        await first.store.put_rate_card(PutRateCard("card", None, "USD", (price,)), NOW)
        await first.store.put_customer(PutCustomer("acme", "", "card"), NOW)
        assert (await first.store.record_outcome(_outcome("o1"), NOW)).ledger_sequence == 1
        second = await start(_settings(tmp_path / "rating.db"))
        try:
            assert "serving without the writer's working set" in caplog.text
            dearer = Price("resolution", Money.of("1.50", "USD"), timedelta(hours=1))
            await second.store.put_rate_card(PutRateCard("card", NOW, "USD", (dearer,)), NOW)
            priced = await first.store.record_outcome(_outcome("o2"), NOW)
            assert (priced.ledger_sequence, priced.unit_price) == (2, Money.of("1.50", "USD"))
            assert (await second.store.record_outcome(_outcome("o3"), NOW)).ledger_sequence == 3
            assert (await first.store.record_outcome(_outcome("o4"), NOW)).ledger_sequence == 4
        finally:
            await second.stop(grace=0.5)
    finally:
        await first.stop(grace=0.5)


async def test_a_stopped_server_gives_the_file_back(tmp_path: Path) -> None:
    """Stopping releases the claim (so does the end of the process, however it ends)."""
    first = await start(_settings(tmp_path / "rating.db"))
    await first.stop(grace=0.5)
    claim = claim_ledger(f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}")
    assert claim is not None
    claim.release()
