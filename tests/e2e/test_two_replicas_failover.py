"""The compose topology without containers: two `serve` processes on one PostgreSQL ledger,
the load spread over both, one SIGKILLed mid-load; callers retry its failed calls on the
other, and nothing acknowledged is lost or written twice.

Clients pick a replica per call in turn, as a round-robin balancer in front of them would;
a call that fails is sent again (same outcome id) to the other replica, which is what a
client behind that balancer sees once the dead one is taken out.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import Launcher, ServiceProcess
from support import all_entries, customer_on_rate_card, fresh_postgres_database, record

POSTGRES_URL = os.environ.get("RATING_TEST_POSTGRES_URL", "")
CUSTOMERS = [f"replica-co-{n}" for n in range(4)]
WORKERS = 6
OUTCOMES_PER_WORKER = 60
KILL_AFTER = 120
"""Acknowledged outcomes before replica A is killed: the load is still running then."""
CALL_TIMEOUT = 15.0
LOAD_TIMEOUT = 180.0


@dataclass
class Failover:
    acknowledged: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    """(customer, outcome id) -> the ledger sequence its answer named."""
    answered_by: Counter[str] = field(default_factory=Counter)
    """Acknowledgements per replica ("A", "B")."""
    retried_on_the_other: int = 0
    killed_at: int = 0
    entries: dict[str, list[pb.LedgerEntry]] = field(default_factory=dict, repr=False)
    verify_code: int | None = None
    verify_output: str = field(default="", repr=False)


async def _worker(
    stubs: dict[str, rating_pb2_grpc.RatingServiceStub],
    worker: int,
    failover: Failover,
    enough: asyncio.Event,
) -> None:
    turns = itertools.cycle(["A", "B"] if worker % 2 else ["B", "A"])
    for n in range(OUTCOMES_PER_WORKER):
        customer, outcome_id = CUSTOMERS[n % len(CUSTOMERS)], f"conv-{worker}-{n}"
        replica = next(turns)
        for _attempt in range(2):
            try:
                reply = await stubs[replica].RecordOutcome(
                    record(customer, outcome_id), timeout=CALL_TIMEOUT
                )
            except grpc.aio.AioRpcError:
                replica = "B" if replica == "A" else "A"
                failover.retried_on_the_other += 1
                continue
            failover.acknowledged[customer, outcome_id] = reply.ledger_sequence
            failover.answered_by[replica] += 1
            break
        else:
            raise AssertionError(f"{outcome_id} failed on both replicas")
        if len(failover.acknowledged) >= KILL_AFTER:
            enough.set()


async def _run(a: ServiceProcess, b: ServiceProcess) -> Failover:
    failover = Failover()
    async with (
        grpc.aio.insecure_channel(a.address) as channel_a,
        grpc.aio.insecure_channel(b.address) as channel_b,
    ):
        stubs = {
            "A": rating_pb2_grpc.RatingServiceStub(channel_a),
            "B": rating_pb2_grpc.RatingServiceStub(channel_b),
        }
        for customer in CUSTOMERS:
            await customer_on_rate_card(stubs["A"], customer)
        enough = asyncio.Event()
        load = asyncio.gather(*(_worker(stubs, w, failover, enough) for w in range(WORKERS)))
        await asyncio.wait_for(enough.wait(), LOAD_TIMEOUT)
        failover.killed_at = len(failover.acknowledged)
        await asyncio.to_thread(a.kill)
        await asyncio.wait_for(load, LOAD_TIMEOUT)
        for customer in CUSTOMERS:
            failover.entries[customer] = await all_entries(stubs["B"], customer)
    assert await asyncio.to_thread(b.terminate) == 0, b.output()
    verified = await asyncio.to_thread(b.run, "verify")
    failover.verify_code, failover.verify_output = verified.returncode, verified.stdout
    return failover


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failover]:
    if not POSTGRES_URL:
        pytest.skip("RATING_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    launcher = Launcher(tmp_path_factory.mktemp("replicas"))
    with fresh_postgres_database(POSTGRES_URL) as url:
        try:
            a = launcher(env={"RATING_DATABASE_URL": url})
            b = launcher(env={"RATING_DATABASE_URL": url})
            yield asyncio.run(_run(a, b))
        finally:
            launcher.stop_all()


def test_both_replicas_answered_before_one_was_killed(failover: Failover) -> None:
    assert failover.answered_by["A"] > 0
    assert failover.answered_by["B"] > 0
    assert failover.killed_at < WORKERS * OUTCOMES_PER_WORKER


def test_every_outcome_was_acknowledged_some_after_a_retry_on_the_other_replica(
    failover: Failover,
) -> None:
    assert len(failover.acknowledged) == WORKERS * OUTCOMES_PER_WORKER
    assert failover.retried_on_the_other > 0


def test_each_acknowledged_outcome_is_in_the_ledger_once_at_the_sequence_it_was_told(
    failover: Failover,
) -> None:
    in_ledger = {
        (customer, e.outcome_id): e.sequence
        for customer, entries in failover.entries.items()
        for e in entries
        if e.outcome_id
    }
    counts = Counter(
        (customer, e.outcome_id)
        for customer, entries in failover.entries.items()
        for e in entries
        if e.outcome_id
    )

    assert in_ledger == failover.acknowledged
    assert set(counts.values()) == {1}


def test_verify_passes_on_the_shared_ledger(failover: Failover) -> None:
    assert failover.verify_code == 0, failover.verify_output
