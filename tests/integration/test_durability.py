"""Durable commits and group commit, read off the connections the running service uses.

Killing the server (tests/e2e/test_crash_safety.py) leaves the operating
system's page cache intact, so a crash test cannot tell a commit that reached
the disk from one that reached only the cache: ``synchronous=OFF`` would pass
it. These tests therefore ask each connection the service built (its writer's,
each of its readers', and the async reader that ``verify`` and the lease use)
how it commits, and count the transactions concurrent calls share.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import REGISTRY
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from sqlalchemy.engine import Connection
from support import customer_on_rate_card, record

from rating_service import bootstrap
from rating_service.app import Service, start
from rating_service.config import Settings
from rating_service.ledger.engine import READ_THREADS, Engines

CONCURRENT_CALLS = 100
FULL = 2
"""``PRAGMA synchronous`` answers a number: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA."""
BUSY_TIMEOUT_MS = 10_000
"""How long a connection waits for another's lock (a checkpoint, ``verify``, a second
process) before it fails; Python's sqlite3 waits 5 s unless told otherwise."""
WAITS = f"busy_timeout >= {BUSY_TIMEOUT_MS} ms"

DURABLE: dict[str, dict[str, object]] = {
    "sqlite": {"journal_mode": "wal", "synchronous": FULL, WAITS: True},
    # A COMMIT returns once the WAL is flushed to disk.
    "postgresql": {"synchronous_commit": "on", "fsync": "on"},
}
"""What every connection of the service answers, by engine."""


@dataclass
class Running:
    service: Service
    engines: Engines
    """The engines ``bootstrap`` built for the service, exactly as it built them."""


@pytest.fixture
async def running(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """The service, started as ``serve`` starts it, with the engines it built kept aside.

    Its sweeper runs once at start and then sleeps for an hour, so after that
    the ledger writer commits nothing but the test's calls.
    """
    built: list[Engines] = []
    create_engines = bootstrap.create_engines

    def keep(url: str) -> Engines:
        built.append(create_engines(url))
        return built[-1]

    monkeypatch.setattr(bootstrap, "create_engines", keep)
    service = await start(
        Settings(database_url=database_url, listen="127.0.0.1:0", sweep_interval=3600)
    )
    try:
        [engines] = built
        yield Running(service, engines)
    finally:
        await service.stop(grace=1.0)


def durability(conn: Connection) -> dict[str, object]:
    """How ``conn`` commits, in the terms of ``DURABLE``."""

    def ask(statement: str) -> object:
        return conn.exec_driver_sql(statement).scalar()

    if conn.dialect.name == "sqlite":
        return {
            "journal_mode": ask("PRAGMA journal_mode"),
            "synchronous": ask("PRAGMA synchronous"),
            WAITS: int(str(ask("PRAGMA busy_timeout"))) >= BUSY_TIMEOUT_MS,
        }
    return {name: ask(f"SHOW {name}") for name in ("synchronous_commit", "fsync")}


async def test_the_ledger_writer_commits_durably(running: Running) -> None:
    """The writer's connection, asked inside a ledger job: WAL, synchronous=FULL, a busy timeout.

    On PostgreSQL: synchronous_commit and fsync on (a COMMIT returns once the WAL is flushed).
    """
    found = await running.service.store.write(durability)

    assert found == DURABLE[running.engines.dialect]


async def test_every_reader_connection_has_the_same_settings(running: Running) -> None:
    """All the read pool's connections at once.

    On SQLite each reader thread has its own connection, held here until all
    have answered; on PostgreSQL reads share the writer's pool.
    """
    dialect = running.engines.dialect
    together = threading.Barrier(READ_THREADS, timeout=10) if dialect == "sqlite" else None

    def ask(conn: Connection) -> tuple[int, dict[str, object]]:
        if together is not None:  # SQLite: one connection per reader thread
            together.wait()
        return id(conn.connection.dbapi_connection), durability(conn)

    answers = await asyncio.gather(*(running.service.store.read(ask) for _ in range(READ_THREADS)))

    if dialect == "sqlite":
        assert len({connection for connection, _ in answers}) == READ_THREADS
    assert [found for _, found in answers] == [DURABLE[dialect]] * READ_THREADS


async def test_the_short_reads_connection_has_the_same_settings(running: Running) -> None:
    """Quotes, balances and pages read on their own thread (SQLite) or the pool."""
    short_reads = running.engines.short_reads or running.engines.reads

    found = await short_reads.run(durability)

    assert found == DURABLE[running.engines.dialect]


async def test_a_quote_is_answered_while_long_reads_hold_every_reader_thread(
    running: Running,
) -> None:
    """A report or a reconciliation that takes its time never holds up the API's short reads."""
    if running.engines.dialect != "sqlite":
        pytest.skip("PostgreSQL's reads share one pool of connections")
    release = threading.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.service.port}") as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        long_reads = [
            asyncio.ensure_future(running.service.store.read(lambda _conn: release.wait(30)))
            for _ in range(READ_THREADS)
        ]
        try:
            await asyncio.sleep(0.1)  # every reader thread now waits in a long read

            quote = await stub.QuoteCost(
                pb.QuoteCostRequest(customer_id=customer, outcome_type="resolution", quantity=2),
                timeout=5,
            )

            assert (quote.total.units, quote.total.nanos) == (1, 980_000_000)
            assert [r.done() for r in long_reads] == [False] * READ_THREADS
        finally:
            release.set()
            await asyncio.gather(*long_reads)


async def test_the_async_reader_that_verify_uses_has_the_same_settings(running: Running) -> None:
    """``verify`` and the reporter's lease read through this engine."""
    async with running.engines.reader.connect() as conn:
        found = await conn.run_sync(durability)

    assert found == DURABLE[running.engines.dialect]


def commit_batches() -> tuple[float, float]:
    """(transactions committed, calls they carried) so far, from the group-commit histogram."""
    count = REGISTRY.get_sample_value("rating_ledger_commit_batch_size_count")
    total = REGISTRY.get_sample_value("rating_ledger_commit_batch_size_sum")
    assert count is not None
    assert total is not None
    return count, total


async def test_concurrent_calls_share_transactions(running: Running) -> None:
    """100 RecordOutcome calls at once are all committed, in fewer than half as many COMMITs.

    The histogram observes each ledger transaction once, with the number of
    calls it carried. The sweeper's one pass at start may add a commit or two
    of its own: that can only make the count of commits larger.
    """
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.service.port}") as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        commits_before, calls_before = commit_batches()

        answers = await asyncio.gather(
            *(stub.RecordOutcome(record(customer, f"conv-{i}")) for i in range(CONCURRENT_CALLS))
        )

    commits_after, calls_after = commit_batches()
    commits, calls = commits_after - commits_before, calls_after - calls_before
    assert sorted(a.ledger_sequence for a in answers) == list(range(1, CONCURRENT_CALLS + 1))
    assert calls >= CONCURRENT_CALLS
    assert commits <= CONCURRENT_CALLS // 2, f"{calls} calls took {commits} commits"
