"""Two replicas on one PostgreSQL ledger: what PostgreSQL is for (architecture.md).

Each replica gathers its callers into one transaction (group commit), so one
transaction touches many customers' chains. Two replicas whose batches lock
the same customers in different orders would deadlock, and PostgreSQL would
abort one of them: every call in it would fail. The service must neither
fail those calls nor write anything twice, whichever replica each call
reaches.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from prometheus_client import REGISTRY
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, create_bucket, customer_on_rate_card, record

from rating_service.app import Service, start
from rating_service.config import Settings
from rating_service.ledger.engine import create_engines
from rating_service.ledger.session import WriteSession
from rating_service.ledger.writer import GroupCommitWriter

if TYPE_CHECKING:
    from conftest import MovableClock

CUSTOMERS = [f"tenant-{i}" for i in range(12)]
CALLS_PER_WORKER = 40
WORKERS_PER_REPLICA = 24
BATCH = 6


@pytest.fixture
async def replicas(
    database_url: str, engine: str, clock: MovableClock
) -> AsyncIterator[list[Service]]:
    """Two services on one database, on one clock, each sweeping every 50 ms."""
    if engine != "postgresql":
        pytest.skip("replicas share a ledger on PostgreSQL only")
    started: list[Service] = []
    try:
        for _ in range(2):
            settings = Settings(
                database_url=database_url, listen="127.0.0.1:0", sweep_interval=0.05
            )
            started.append(await start(settings, clock))
        yield started
    finally:
        for service in started:
            await service.stop(grace=1.0)


async def test_two_replicas_under_crossing_load_answer_every_call_and_write_each_outcome_once(
    replicas: list[Service],
) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for s in replicas]
    stubs = [rating_pb2_grpc.RatingServiceStub(c) for c in channels]
    for customer in CUSTOMERS:
        await customer_on_rate_card(stubs[0], customer)
    failures: list[str] = []

    async def worker(stub: rating_pb2_grpc.RatingServiceStub, name: str) -> None:
        rng = random.Random(name)
        for n in range(CALLS_PER_WORKER):
            # Several customers per call, in a random order: batches that cross.
            customers = rng.sample(CUSTOMERS, BATCH)
            items = [record(c, f"{name}-{n}-{c}") for c in customers]
            try:
                reply = await stub.RecordOutcomes(pb.RecordOutcomesRequest(requests=items))
            except grpc.aio.AioRpcError as error:
                failures.append(f"{name}: {error.code().name} {error.details()}")
                continue
            failures.extend(
                f"{name}: {r.error.code} {r.error.message}"
                for r in reply.results
                if r.WhichOneof("result") != "response"
            )

    try:
        await asyncio.gather(
            *(
                worker(stub, f"r{i}w{w}")
                for i, stub in enumerate(stubs)
                for w in range(WORKERS_PER_REPLICA)
            )
        )
        ledgers = {c: await all_entries(stubs[1], c) for c in CUSTOMERS}
    finally:
        for channel in channels:
            await channel.close()

    assert failures == []
    recorded = Counter(e.outcome_id for entries in ledgers.values() for e in entries)
    expected = 2 * WORKERS_PER_REPLICA * CALLS_PER_WORKER * BATCH
    assert len(recorded) == expected
    assert set(recorded.values()) == {1}
    for entries in ledgers.values():
        assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))


async def test_two_replicas_sweeping_the_same_due_outcomes_and_buckets_settle_and_expire_each_once(
    replicas: list[Service], clock: MovableClock
) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for s in replicas]
    stub = rating_pb2_grpc.RatingServiceStub(channels[0])
    now = datetime.now(UTC)
    try:
        for customer in CUSTOMERS:
            await customer_on_rate_card(stub, customer, settlement_window=timedelta(hours=1))
            # 15 units for 10 outcomes: 5 are left to expire.
            await create_bucket(stub, customer, "trial", 15, valid_until=now + timedelta(hours=2))
            for n in range(10):
                await stub.RecordOutcome(
                    record(customer, f"{customer}-{n}", state=pb.OUTCOME_STATE_PENDING)
                )
        clock.advance(timedelta(hours=3))  # every outcome due and every bucket expired at once
        for _ in range(600):  # up to 30 s on a busy machine
            balances = [
                await stub.GetBalance(pb.GetBalanceRequest(customer_id=c)) for c in CUSTOMERS
            ]
            if all(b.pending_outcomes == 0 for b in balances):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more sweeps by both replicas
        ledgers = {c: await all_entries(stub, c) for c in CUSTOMERS}
    finally:
        for channel in channels:
            await channel.close()

    for entries in ledgers.values():
        kinds = Counter(e.kind for e in entries)
        assert kinds[pb.LEDGER_ENTRY_KIND_OUTCOME_HELD] == 10
        assert kinds[pb.LEDGER_ENTRY_KIND_OUTCOME_RATED] == 10  # settled once each
        expired = [e for e in entries if e.kind == pb.LEDGER_ENTRY_KIND_BUCKET_EXPIRED]
        assert [e.units for e in expired] == [5]  # expired once, with what was left


async def test_a_batch_the_database_aborts_as_a_deadlock_is_run_again_not_failed(
    database_url: str, engine: str
) -> None:
    """The safety net under the up-front locks: a job that locks more than its caller named
    (here two rows of a table of its own, in opposite orders on two replicas) can still
    deadlock; PostgreSQL rolls one transaction back, and its batch runs again."""
    if engine != "postgresql":
        pytest.skip("SQLite holds the whole database for a write transaction: no deadlocks")
    engines = [create_engines(database_url) for _ in range(2)]
    async with engines[0].reader.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE probe (id text PRIMARY KEY, n int NOT NULL)")
        await conn.exec_driver_sql("INSERT INTO probe VALUES ('a', 0), ('b', 0)")
    writers = [GroupCommitWriter(e.writer) for e in engines]
    for writer in writers:
        writer.start()

    def bump_in_order(first: str, second: str) -> Callable[[WriteSession], None]:
        def job(s: WriteSession) -> None:
            conn = s.conn
            for row in (first, second):
                conn.exec_driver_sql(f"UPDATE probe SET n = n + 1 WHERE id = '{row}'")
                conn.exec_driver_sql("SELECT pg_sleep(0.2)")  # the other replica's first lock

        return job

    retries_before = _commit_retries()
    try:
        await asyncio.gather(
            writers[0].submit(bump_in_order("a", "b")), writers[1].submit(bump_in_order("b", "a"))
        )
        async with engines[0].reader.connect() as conn:
            counts = dict((await conn.exec_driver_sql("SELECT id, n FROM probe")).all())
    finally:
        for writer, created in zip(writers, engines, strict=True):
            await writer.stop()
            await created.dispose()

    assert counts == {"a": 2, "b": 2}
    assert _commit_retries() > retries_before


def _commit_retries() -> float:
    return REGISTRY.get_sample_value("rating_ledger_commit_retries_total") or 0.0
