"""The SQLite writer's working set never differs from the database it stands for.

A randomized workload of 1,000 rounds, each a handful of concurrent calls
committed together: outcomes recorded, confirmed and reversed, buckets
created, drawn and voided, rate cards and customers changed, spend limits
that refuse charges, refused payloads, a job that fails after writing (the
careful path), commits that fail, and another connection committing behind
the writer's back. After every round, each customer head, rate card and
bucket list the writer holds is compared with what the database says.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from rating_service.domain.buckets import Bucket, BucketSource
from rating_service.domain.commands import (
    ConfirmOutcome,
    ConsumeBucket,
    CreateBucket,
    OutcomeState,
    PutCustomer,
    PutRateCard,
    PutSpendControls,
    RecordOutcome,
    ReverseOutcome,
    VoidBucket,
)
from rating_service.domain.errors import DomainError
from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price
from rating_service.ledger import outbox
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.engine import (
    READ_THREADS,
    Engines,
    ThreadRunner,
    sqlite_pragmas,
)
from rating_service.ledger.migrate import upgrade
from rating_service.ledger.session import ReadSession, WriteSession
from rating_service.ledger.unit import Caches
from rating_service.ledger.verify import verify
from rating_service.ledger.writer import GroupCommitWriter, StoreUnavailable
from rating_service.service import outcomes
from rating_service.service.store import LedgerStore

ROUNDS = 1000
NOW = datetime(2026, 3, 1, tzinfo=UTC)
CUSTOMERS = [f"ws-{n}" for n in range(6)]
CARDS = ("card-a", "card-b")
TYPES = ("resolution", "handoff")


class Bug(Exception):
    """A job that fails after it wrote, as a bug would: the batch goes the careful way."""


@dataclass
class Faults:
    """Commits the test makes fail: the next ``failing`` commits of the writer raise."""

    failing: int = 0
    failed: int = 0

    def on_commit(self, _conn: Connection) -> None:
        if self.failing:
            self.failing -= 1
            self.failed += 1
            raise OSError("injected: the disk refused the commit")


@dataclass
class Ledger:
    store: LedgerStore
    writer: GroupCommitWriter
    """A second writer on the store's connection, for jobs of the test's own making."""
    engines: Engines
    faults: Faults
    outside: Any
    """Another connection's engine, committing behind the writer's back."""


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    path = tmp_path / "rating.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    faults = Faults()
    written = create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0)
    sqlite_pragmas(written, immediate=True)
    event.listen(written, "commit", faults.on_commit)
    reads = create_engine(f"sqlite:///{path}", pool_size=READ_THREADS, max_overflow=0)
    sqlite_pragmas(reads, immediate=False)
    reader = create_async_engine(url)
    sqlite_pragmas(reader.sync_engine, immediate=False)
    engines = Engines(
        reader=reader,
        reads=ThreadRunner(reads, threads=READ_THREADS, name="test-reader"),
        writer=ThreadRunner(written, threads=1, name="test-writer"),
    )
    store = LedgerStore(engines)
    store.start()
    outside = create_engine(f"sqlite:///{path}")
    sqlite_pragmas(outside, immediate=True)
    for card in CARDS:
        await store.put_rate_card(_card(card, "0.99", None), NOW)
    for n, customer in enumerate(CUSTOMERS):
        await store.put_customer(PutCustomer(customer, "", CARDS[n % 2]), NOW)
    writer = GroupCommitWriter(engines.writer)
    writer.start()
    yield Ledger(store, writer, engines, faults, outside)
    await writer.stop()
    await store.close()
    outside.dispose()


def _card(card: str, price: str, effective_from: datetime | None) -> PutRateCard:
    prices = tuple(
        Price(t, Money.of(price, "USD"), timedelta(hours=1 + i)) for i, t in enumerate(TYPES)
    )
    return PutRateCard(card, effective_from, "USD", prices)


def _compare(uow: WriteSession) -> tuple[int, list[str]]:
    """(how much the working set holds, where it differs from the database)."""
    caches = uow.caches
    assert isinstance(caches, Caches)
    assert caches.persistent, "SQLite's writer keeps its caches between batches"
    db = ReadSession(uow.sql.conn)
    differences: list[str] = []
    for customer_id, head in caches.heads.items():
        stored = db.customers.head(customer_id)
        if stored != head:
            differences.append(f"head of {customer_id}: held {head}, stored {stored}")
    for card, (starts, versions) in caches.versions.items():
        stored_versions = db.rate_cards.all(card)
        if stored_versions != versions or starts != [
            to_micros(v.effective_from) for v in stored_versions
        ]:
            differences.append(f"rate card {card}: held {versions}, stored {stored_versions}")
    for customer_id, outcome_type, (since, held) in (
        (c, t, found)
        for c, of_customer in caches.buckets.items()
        for t, found in of_customer.items()
    ):
        stored_buckets = db.buckets.unexpired(customer_id, outcome_type, from_micros(since))
        if _by_id(held) != _by_id(stored_buckets):
            differences.append(
                f"buckets of {customer_id}/{outcome_type}: held {held}, stored {stored_buckets}"
            )
    held_count = len(caches.heads) + len(caches.versions) + len(caches.buckets)
    return held_count, differences


def _by_id(found: list[Bucket]) -> dict[str, Bucket]:
    return {b.bucket_id: b for b in found}


def _buggy(cmd: RecordOutcome, now: datetime) -> Callable[[WriteSession], object]:
    def job(uow: WriteSession) -> object:
        outcomes.record(uow, cmd, now)
        uow.flush()  # its rows reached the database: memory cannot take them back
        raise Bug("failed after it wrote")

    return job


class Workload:
    def __init__(self, ledger: Ledger, rng: random.Random) -> None:
        self.ledger = ledger
        self.rng = rng
        self.recorded: list[tuple[str, str]] = []
        self.buckets: list[tuple[str, str]] = []
        self.serial = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def call(self, now: datetime) -> Any:
        """One random call: a coroutine the round gathers with the others."""
        rng, store = self.rng, self.ledger.store
        customer = rng.choice(CUSTOMERS)
        kind = rng.choices(
            [
                "record",
                "replay",
                "confirm",
                "reverse",
                "consume",
                "bucket",
                "void",
                "customer",
                "card",
                "limit",
                "bug",
                "unknown",
                "reporter",
            ],
            weights=[40, 5, 6, 6, 6, 6, 2, 2, 2, 3, 2, 2, 4],
        )[0]
        outcome_type = rng.choice(TYPES)
        if kind == "record" or (kind in ("replay", "confirm", "reverse") and not self.recorded):
            outcome_id = self._id("o")
            state = rng.choice([OutcomeState.CONFIRMED, OutcomeState.PENDING])
            self.recorded.append((customer, outcome_id))
            return store.record_outcome(
                RecordOutcome(customer, outcome_id, outcome_type, None, state), now
            )
        if kind == "replay":  # the same id, maybe another payload: replayed or refused
            customer, outcome_id = rng.choice(self.recorded)
            return store.record_outcome(
                RecordOutcome(customer, outcome_id, outcome_type, None, OutcomeState.CONFIRMED),
                now,
            )
        if kind == "confirm":
            return store.confirm_outcome(ConfirmOutcome(*rng.choice(self.recorded)), now)
        if kind == "reverse":
            customer, outcome_id = rng.choice(self.recorded)
            return store.reverse_outcome(ReverseOutcome(customer, outcome_id, "reopened"), now)
        if kind == "consume" and self.buckets:
            customer, bucket_id = rng.choice(self.buckets)
            return store.consume_bucket(
                ConsumeBucket(customer, self._id("c"), "resolution", 1, bucket_id, "manual"), now
            )
        if kind == "void" and self.buckets:
            customer, bucket_id = rng.choice(self.buckets)
            return store.void_bucket(VoidBucket(customer, bucket_id, "gone"), now)
        if kind in ("bucket", "consume", "void"):
            bucket_id = self._id("b")
            self.buckets.append((customer, bucket_id))
            return store.create_bucket(
                CreateBucket(
                    customer_id=customer,
                    bucket_id=bucket_id,
                    outcome_type="resolution",
                    quantity=rng.randint(1, 5),
                    funding=None,
                    valid_from=None,
                    valid_until=now + timedelta(seconds=rng.randint(5, 600)),
                    unit_price=None,
                    source=BucketSource.PURCHASE,
                    priority=rng.randint(0, 3),
                ),
                now,
            )
        if kind == "customer":
            return store.put_customer(PutCustomer(customer, "", rng.choice(CARDS)), now)
        if kind == "card":
            price = f"{rng.randint(1, 300) / 100:.2f}"
            return store.put_rate_card(_card(rng.choice(CARDS), price, None), now)
        if kind == "limit":
            limit = None if rng.random() < 0.3 else Money.of(str(rng.randint(1, 40)), "USD")
            thresholds = (Money.of(str(rng.randint(1, 20)), "USD"),)
            return store.put_spend_controls(
                PutSpendControls(customer, self._id("s"), thresholds, limit), now
            )
        if kind == "reporter":  # parks the customer and records its buckets' grants
            of_customer = [b for c, b in self.buckets if c == customer]
            grant = self._id("credgr")

            def bookkeeping(conn: Connection) -> None:
                outbox.park(conn, customer, "card declined", now)
                for bucket_id in of_customer:
                    outbox.record_grant(conn, customer, bucket_id, grant)

            return store.write(bookkeeping)
        if kind == "bug":
            cmd = RecordOutcome(customer, self._id("o"), outcome_type, None, OutcomeState.CONFIRMED)
            return self.ledger.writer.submit(_buggy(cmd, now), customers=(customer,))
        cmd = RecordOutcome("nobody", self._id("o"), outcome_type, None, OutcomeState.CONFIRMED)
        return store.record_outcome(cmd, now)


async def _outside_commit(ledger: Ledger, customer: str, card: str) -> None:
    """Another connection changes a customer's rate card: the writer must notice."""

    def change() -> None:
        with ledger.outside.begin() as conn:
            conn.execute(
                text("UPDATE customers SET rate_card_id = :card WHERE customer_id = :customer"),
                {"card": card, "customer": customer},
            )

    await asyncio.to_thread(change)


async def test_the_writers_working_set_matches_the_database_after_every_round(
    ledger: Ledger,
) -> None:
    """1,000 randomized rounds with failed commits and foreign writes: no difference ever."""
    rng = random.Random(15)
    workload = Workload(ledger, rng)
    answered: dict[str, int] = {}
    held_rounds = 0
    for round_ in range(ROUNDS):
        now = NOW + timedelta(seconds=round_)
        if rng.random() < 0.06:
            ledger.faults.failing = 1
        if rng.random() < 0.02:
            await _outside_commit(ledger, rng.choice(CUSTOMERS), rng.choice(CARDS))
        calls = [workload.call(now) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.05:
            calls.append(ledger.store.settle_due(now + timedelta(hours=2)))
        for result in await asyncio.gather(*calls, return_exceptions=True):
            name = type(result).__name__
            answered[name] = answered.get(name, 0) + 1
            if isinstance(result, Exception) and not isinstance(
                result, Bug | DomainError | StoreUnavailable
            ):
                raise result
        ledger.faults.failing = 0
        held, differences = await ledger.writer.submit(_compare)
        assert differences == [], f"round {round_}: {differences}"
        held_rounds += held > 0
    assert ledger.faults.failed > 20, "commits failed along the way"
    assert answered.get("StoreUnavailable", 0) > 20
    assert answered.get("Bug", 0) > 5, "the careful path ran"
    assert answered.get("NoneType", 0) > 20, "the reporter's bookkeeping ran"
    assert held_rounds > ROUNDS // 2, "the working set held something to compare"
    assert (await verify(ledger.engines)).problems == []


async def test_the_reporters_bookkeeping_keeps_the_writers_working_set(ledger: Ledger) -> None:
    """A reporter job between two calls: the second call finds what the first left held."""
    store = ledger.store
    for n, customer in enumerate(CUSTOMERS):
        await store.record_outcome(
            RecordOutcome(customer, f"kept-{n}", "resolution", None, OutcomeState.CONFIRMED), NOW
        )
    held_before, _ = await ledger.writer.submit(_compare)

    await store.write(lambda conn: outbox.park(conn, CUSTOMERS[0], "card declined", NOW))

    held_after, differences = await ledger.writer.submit(_compare)
    assert (held_before, held_after, differences) == (held_before, held_before, [])
    assert held_before >= len(CUSTOMERS), "every customer's head was held"
