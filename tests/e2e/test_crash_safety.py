"""Crash safety: a SIGKILL in the middle of a load loses no acknowledged write and doubles none.

One scenario runs once for the module: 8 clients, each on its own channel
with a few calls in flight, record outcomes with unique ids for a customer
whose bucket covers part of them. Once a few hundred are acknowledged the
server is killed with SIGKILL (calls still in flight), restarted on the same
database file, and every outcome, acknowledged or not, is sent again. The
tests below each check one thing the ledger must show afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import Launcher, ServiceProcess
from support import all_entries, create_bucket, customer_on_rate_card, record

CUSTOMER = "crash-co"
BUCKET = "prepaid"
BUCKET_UNITS = 300
WORKERS = 8
IN_FLIGHT_PER_WORKER = 4
OUTCOMES_PER_WORKER = 80
KILL_AFTER = 250
"""Acknowledged outcomes before the kill: the load is still running then."""
CALL_TIMEOUT = 15.0
LOAD_TIMEOUT = 120.0

OUTCOME_IDS = [f"conv-{w}-{i}" for w in range(WORKERS) for i in range(OUTCOMES_PER_WORKER)]


@dataclass
class Crash:
    """What the clients saw and what the ledger holds after the crash and the retries."""

    acknowledged: dict[str, pb.RecordOutcomeResponse] = field(default_factory=dict, repr=False)
    """Answers the load received (before the kill, or just as it hit), by outcome id."""
    failed_before_kill: dict[str, grpc.StatusCode] = field(default_factory=dict, repr=False)
    failed_at_kill: dict[str, grpc.StatusCode] = field(default_factory=dict, repr=False)
    entries_after_restart: list[pb.LedgerEntry] = field(default_factory=list, repr=False)
    retried: dict[str, pb.RecordOutcomeResponse] = field(default_factory=dict, repr=False)
    """The answer to sending every outcome again after the restart."""
    entries_final: list[pb.LedgerEntry] = field(default_factory=list, repr=False)
    bucket: pb.Bucket | None = None
    killed: bool = False
    exit_code: int | None = None
    verify_code: int | None = None
    verify_output: str = field(default="", repr=False)


async def _worker(
    address: str, outcome_ids: list[str], crash: Crash, enough: asyncio.Event
) -> None:
    """Send these outcomes, a few at a time on one channel, until one call fails."""
    pending = iter(outcome_ids)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)

        async def lane() -> None:
            for outcome_id in pending:
                try:
                    reply = await stub.RecordOutcome(
                        record(CUSTOMER, outcome_id), timeout=CALL_TIMEOUT
                    )
                except grpc.aio.AioRpcError as error:
                    failures = crash.failed_at_kill if crash.killed else crash.failed_before_kill
                    failures[outcome_id] = error.code()
                    return
                crash.acknowledged[outcome_id] = reply
                if len(crash.acknowledged) >= KILL_AFTER:
                    enough.set()

        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT_PER_WORKER)))


async def _retry_all(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> dict[str, pb.RecordOutcomeResponse]:
    """Send every outcome again, 64 at a time."""
    gate = asyncio.Semaphore(64)

    async def one(outcome_id: str) -> tuple[str, pb.RecordOutcomeResponse]:
        async with gate:
            reply = await stub.RecordOutcome(record(CUSTOMER, outcome_id), timeout=CALL_TIMEOUT)
            return outcome_id, reply

    return dict(await asyncio.gather(*(one(o) for o in OUTCOME_IDS)))


async def _run(server: ServiceProcess) -> Crash:
    crash = Crash()
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        await customer_on_rate_card(stub, CUSTOMER)
        await create_bucket(stub, CUSTOMER, BUCKET, BUCKET_UNITS)

    enough = asyncio.Event()
    load = asyncio.gather(
        *(_worker(server.address, OUTCOME_IDS[w::WORKERS], crash, enough) for w in range(WORKERS))
    )
    waiter = asyncio.ensure_future(enough.wait())
    await asyncio.wait({load, waiter}, timeout=LOAD_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    crash.killed = True
    crash.exit_code = server.kill()
    await asyncio.wait_for(load, LOAD_TIMEOUT)

    await asyncio.to_thread(server.start)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        crash.entries_after_restart = await all_entries(stub, CUSTOMER)
        crash.retried = await _retry_all(stub)
        crash.entries_final = await all_entries(stub, CUSTOMER)
        balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=CUSTOMER))
        crash.bucket = next(b for b in balance.buckets if b.bucket_id == BUCKET)
    assert await asyncio.to_thread(server.terminate) == 0, server.output()

    verified = await asyncio.to_thread(server.run, "verify")
    crash.verify_code, crash.verify_output = verified.returncode, verified.stdout
    return crash


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crash]:
    """The scenario, run once: load, SIGKILL mid-load, restart, retry everything."""
    launcher = Launcher(tmp_path_factory.mktemp("crash"))
    try:
        yield asyncio.run(_run(launcher()))
    finally:
        launcher.stop_all()


def outcome_counts(entries: list[pb.LedgerEntry]) -> Counter[str]:
    """How many ledger transactions name each outcome."""
    return Counter(e.outcome_id for e in entries if e.outcome_id)


def test_the_server_was_killed_with_calls_in_flight(crash: Crash) -> None:
    """The kill came mid-load: calls failed at the kill and some outcomes were never answered."""
    assert crash.exit_code == -9
    assert crash.failed_at_kill
    assert KILL_AFTER <= len(crash.acknowledged) < len(OUTCOME_IDS)


def test_no_call_failed_before_the_kill(crash: Crash) -> None:
    """The load itself is served without errors; only the kill makes calls fail."""
    assert crash.failed_before_kill == {}


def test_every_acknowledged_outcome_is_in_the_ledger_exactly_once_after_the_restart(
    crash: Crash,
) -> None:
    """An answer means a durable commit: nothing acknowledged is lost or doubled."""
    counts = outcome_counts(crash.entries_after_restart)

    assert {o: counts[o] for o in crash.acknowledged} == dict.fromkeys(crash.acknowledged, 1)


def test_retrying_an_acknowledged_outcome_replays_its_original_sequence(crash: Crash) -> None:
    """After the restart each acknowledged outcome answers replayed=True at its first sequence."""
    replays = {
        o: (crash.retried[o].replayed, crash.retried[o].ledger_sequence) for o in crash.acknowledged
    }

    assert replays == {o: (True, a.ledger_sequence) for o, a in crash.acknowledged.items()}


def test_retrying_everything_records_each_outcome_exactly_once(crash: Crash) -> None:
    """Unacknowledged outcomes (lost or committed unanswered) end with one transaction each."""
    assert outcome_counts(crash.entries_final) == Counter(OUTCOME_IDS)


def test_a_retry_replays_exactly_the_outcomes_already_in_the_ledger(crash: Crash) -> None:
    """Outcomes the restarted server already had are replays; the others are new."""
    before = set(outcome_counts(crash.entries_after_restart))

    assert {o for o, r in crash.retried.items() if r.replayed} == before


def test_the_bucket_remaining_plus_units_drawn_equals_its_quantity(crash: Crash) -> None:
    """No unit was drawn twice or lost: the bucket balances with the outcomes it covered."""
    assert crash.bucket is not None
    drawn = sum(r.units_from_buckets for r in crash.retried.values())
    drawn_in_ledger = sum(
        e.units
        for e in crash.entries_final
        if e.kind == pb.LEDGER_ENTRY_KIND_OUTCOME_RATED and e.bucket_id == BUCKET
    )

    assert crash.bucket.remaining + drawn == crash.bucket.quantity == BUCKET_UNITS
    assert drawn_in_ledger == drawn


def test_some_outcomes_were_drawn_from_the_bucket_and_the_rest_charged(crash: Crash) -> None:
    """The bucket covered exactly its units; every other outcome was charged its price."""
    covered = [r for r in crash.retried.values() if r.units_from_buckets == 1]
    charged = [r for r in crash.retried.values() if r.units_from_buckets == 0]

    assert len(covered) == BUCKET_UNITS
    assert {(r.charged.units, r.charged.nanos) for r in charged} == {(0, 990_000_000)}


def test_the_ledger_sequence_is_gap_free_after_the_crash(crash: Crash) -> None:
    """Sequences run 1, 2, 3, ... with no hole left by the transactions the kill interrupted."""
    sequences = [e.sequence for e in crash.entries_final]

    assert sequences == list(range(1, len(OUTCOME_IDS) + 2))


def test_verify_passes_on_the_database_after_the_crash(crash: Crash) -> None:
    """`rating-service verify` replays the chain, the sums and the balances and exits 0."""
    assert crash.verify_code == 0, crash.verify_output
