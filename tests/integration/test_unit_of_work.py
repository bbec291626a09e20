"""The unit of work keeps its own rules: a refused job leaves nothing, whatever it staged.

A group-commit batch runs many callers' jobs in one transaction. A job may be
refused (a ``DomainError``) after it has staged ledger rows or even written
to the database; what it did must vanish with it, while the jobs before and
after it in the same batch commit as if it had never run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from rating_service.domain.commands import (
    GetBalance,
    OutcomeState,
    PutCustomer,
    PutRateCard,
    RecordOutcome,
)
from rating_service.domain.errors import DomainError, NoPrice
from rating_service.domain.money import Money
from rating_service.domain.postings import EntryKind
from rating_service.domain.ratecard import Price
from rating_service.ledger.engine import Engines, create_engines
from rating_service.ledger.migrate import upgrade
from rating_service.ledger.session import WriteSession
from rating_service.ledger.verify import verify
from rating_service.ledger.writer import GroupCommitWriter
from rating_service.service import catalog, outcomes
from rating_service.service.store import LedgerStore

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
CUSTOMER = "acme"


class Refused(DomainError):
    reason = "REFUSED_BY_TEST"


@dataclass
class Ledger:
    store: LedgerStore
    writer: GroupCommitWriter
    engines: Engines


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    await upgrade(database_url)
    engines = create_engines(database_url)
    store = LedgerStore(engines)
    store.start()
    prices = (Price("resolution", Money.of("0.99", "USD"), timedelta(hours=24)),)
    await store.put_rate_card(PutRateCard("card", None, "USD", prices), NOW)
    await store.put_customer(PutCustomer(CUSTOMER, "", "card"), NOW)
    writer = GroupCommitWriter(engines.writer)  # a second writer: jobs of our own making
    writer.start()
    yield Ledger(store, writer, engines)
    await writer.stop()
    await store.close()


def _record(outcome_id: str) -> Callable[[WriteSession], object]:
    cmd = RecordOutcome(CUSTOMER, outcome_id, "resolution", None, OutcomeState.CONFIRMED)
    return lambda uow: outcomes.record(uow, cmd, NOW)


def _then_refused(job: Callable[[WriteSession], object]) -> Callable[[WriteSession], object]:
    def refused(uow: WriteSession) -> object:
        job(uow)
        raise Refused("refused after it wrote")

    return refused


async def _outcome_ids(ledger: Ledger) -> list[str]:
    entries = await ledger.store.list_entries(CUSTOMER, after=0, limit=100)
    return [e.outcome_id for e in entries if e.kind is EntryKind.OUTCOME_RATED]


async def test_a_job_refused_after_staging_an_append_leaves_no_row_and_its_neighbours_commit(
    ledger: Ledger,
) -> None:
    """The refused job's staged entry, postings, outcome and chain move are taken back."""
    answers = await ledger.writer.submit_many(
        [_record("before"), _then_refused(_record("refused")), _record("after")],
        customers=[CUSTOMER],
    )

    assert isinstance(answers[1], Refused)
    assert await _outcome_ids(ledger) == ["before", "after"]
    entries = await ledger.store.list_entries(CUSTOMER, after=0, limit=100)
    assert [e.sequence for e in entries] == [1, 2]  # no gap where the refused one was
    assert (await verify(ledger.engines)).problems == []


async def test_a_job_refused_after_writing_to_the_database_leaves_no_row_either(
    ledger: Ledger,
) -> None:
    """Writes that reached the database (not just staging) are rolled back with the job alone."""
    new_customer = PutCustomer("newcomer", "", "card")
    answers = await ledger.writer.submit_many(
        [
            _record("before"),
            _then_refused(lambda uow: catalog.put_customer(uow, new_customer, NOW)),
            _then_refused(_record("refused")),
            _record("after"),
        ],
        customers=[CUSTOMER],
    )

    assert [type(a) for a in answers[1:3]] == [Refused, Refused]
    assert await _outcome_ids(ledger) == ["before", "after"]
    with pytest.raises(DomainError, match="does not exist"):
        await ledger.store.get_balance(GetBalance("newcomer"), NOW)
    assert (await verify(ledger.engines)).problems == []


async def test_a_refusal_before_anything_is_staged_costs_its_neighbours_nothing(
    ledger: Ledger,
) -> None:
    """The common refusal (no price) answers its caller and the batch still commits once."""
    no_price = RecordOutcome(CUSTOMER, "unpriced", "unknown-type", None, OutcomeState.CONFIRMED)
    answers = await ledger.writer.submit_many(
        [_record("before"), lambda uow: outcomes.record(uow, no_price, NOW), _record("after")],
        customers=[CUSTOMER],
    )

    assert isinstance(answers[1], NoPrice)
    assert await _outcome_ids(ledger) == ["before", "after"]
