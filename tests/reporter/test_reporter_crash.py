"""SIGKILL while reporting: the service, restarted on its database, reports everything once.

``rating-service serve`` runs as a real process with STRIPE_API_KEY set (so its
reporter runs in its event loop), aimed at a Stripe test server in this test's
loop. Clients record outcomes and reverse some while the process is killed
with SIGKILL at random moments of its reporting (after a random number of its
calls to Stripe) and restarted on the same SQLite file, 12 times. Then it is
left to drain, and Stripe must hold exactly the ledger's usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server

CUSTOMERS = {f"crash-{i}": f"cus_crash_{i}" for i in range(8)}
BUCKETS = ("crash-0", "crash-1", "crash-2")
KILLS = 12
BATCH_PER_CUSTOMER = 5
REVERSE_EVERY = 10
"""Every 10th outcome acknowledged is reversed later (a reported one, as often as not)."""
LOAD_PAUSE = 0.2
"""Seconds between the clients' batches."""
CALLS_BEFORE_KILL = (1, 4)
"""The process is killed after this many (random) calls to Stripe since it started."""
CALL_TIMEOUT = 10.0
KILL_PHASE_TIMEOUT = 120.0
"""Seconds for all the kills and restarts (and for a client call to get through)."""
DRAIN_TIMEOUT = 60.0
SEED = 20261122
_T = TypeVar("_T")
RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)
"""What a client sees while the service is killed and restarting."""


class Load:
    """Clients recording outcomes and reversing some, retrying whatever a kill interrupted."""

    def __init__(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        self.stub = stub
        self.stop = asyncio.Event()
        self.recorded: dict[str, list[str]] = defaultdict(list)
        self.reversed: dict[str, int] = defaultdict(int)
        self.failures = 0
        self._next = 0

    async def _until_done(self, make_call: Callable[[], Awaitable[_T]]) -> _T:
        """Retry an idempotent call until it succeeds (the server may be down a while)."""
        deadline = time.monotonic() + KILL_PHASE_TIMEOUT
        while True:
            try:
                return await make_call()
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE or time.monotonic() > deadline:
                    raise
                self.failures += 1
            await asyncio.sleep(0.05)

    async def record(self, per_customer: int) -> None:
        """``per_customer`` more outcomes of every customer, in batches of at most 1,000."""
        for start in range(0, per_customer, rs.BATCH // len(CUSTOMERS)):
            await self._record_batch(min(per_customer - start, rs.BATCH // len(CUSTOMERS)))

    async def _record_batch(self, per_customer: int) -> None:
        requests = [
            rs.outcome(customer, f"{customer}-o{self._next + i}")
            for i in range(per_customer)
            for customer in CUSTOMERS
        ]
        self._next += per_customer
        batch = pb.RecordOutcomesRequest(requests=requests)
        reply = await self._until_done(
            lambda: self.stub.RecordOutcomes(batch, timeout=CALL_TIMEOUT, wait_for_ready=True)
        )
        for request, result in zip(requests, reply.results, strict=True):
            assert result.WhichOneof("result") == "response", result.error
            self.recorded[request.customer_id].append(request.outcome_id)

    async def reverse_some(self) -> None:
        for customer, outcomes in self.recorded.items():
            due = len(outcomes) // REVERSE_EVERY
            while self.reversed[customer] < due:
                outcome_id = outcomes[self.reversed[customer] * REVERSE_EVERY]
                request = pb.ReverseOutcomeRequest(
                    customer_id=customer, outcome_id=outcome_id, reason="reopened"
                )
                await self._until_done(
                    lambda r=request: self.stub.ReverseOutcome(
                        r, timeout=CALL_TIMEOUT, wait_for_ready=True
                    )
                )
                self.reversed[customer] += 1

    async def run(self) -> None:
        """Record a batch and reverse what is due, every LOAD_PAUSE s, until stopped."""
        while not self.stop.is_set():
            await self.record(BATCH_PER_CUSTOMER)
            await self.reverse_some()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), LOAD_PAUSE)


def _database_facts(database_path: Path) -> tuple[dict[str, tuple[str, int]], int, list[str]]:
    """Planned meter events (identifier -> Stripe customer, value), unsent ones, parked ones."""
    with contextlib.closing(sqlite3.connect(database_path)) as db:
        planned = {
            identifier: (CUSTOMERS[customer], value)
            for identifier, customer, value in db.execute(
                "SELECT identifier, customer_id, value FROM stripe_meter_events"
            )
        }
        (unsent,) = db.execute(
            "SELECT count(*) FROM stripe_meter_events WHERE sent_at IS NULL"
        ).fetchone()
        parked = [
            r[0]
            for r in db.execute(
                "SELECT customer_id FROM stripe_cursors WHERE parked_error IS NOT NULL"
            )
        ]
    return planned, unsent, parked


async def test_sigkilled_at_random_while_reporting_stripe_ends_with_the_ledgers_usage_once(
    stripe_test_server: StripeTestServer, tmp_path: Path
) -> None:
    """12 SIGKILLs mid-reporting: Stripe ends with exactly the ledger's usage; verify and
    reconcile pass."""
    server = stripe_test_server
    rng = random.Random(SEED)
    process = rs.serve_process(
        tmp_path,
        server,
        RATING_STRIPE_WINDOW="1",
        RATING_STRIPE_RATE="500",
        RATING_RECONCILE_INTERVAL="0",
        RATING_SWEEP_INTERVAL="0.1",
    )
    database_path = process.database_path
    env = rs.cli_env(f"sqlite+aiosqlite:///{database_path}", server, RATING_STRIPE_WINDOW="1")
    await asyncio.to_thread(process.start)
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = rating_pb2_grpc.RatingServiceStub(channel)
            await rs.put_card(stub, "standard", "0.99")
            for customer, stripe_id in CUSTOMERS.items():
                server.add_customer(stripe_id)
                await rs.put_customer(stub, customer, stripe_id, "standard")
            for customer in BUCKETS:
                await rs.create_bucket(stub, customer, f"bucket-{customer}", 25)
            setup = await rs.run_cli("stripe", "setup", env=env, cwd=tmp_path)
            assert setup.code == 0, setup.output

            load = Load(stub)
            running = asyncio.create_task(load.run())
            try:
                deadline = time.monotonic() + KILL_PHASE_TIMEOUT
                for _ in range(KILLS):
                    await rs.kill_after_stripe_calls(
                        process, server, rng, deadline, CALLS_BEFORE_KILL
                    )
            finally:
                load.stop.set()
                await asyncio.wait_for(running, KILL_PHASE_TIMEOUT)
            # Usage after the last reversal, more than any customer's reversals: the reversal
            # policy's debt is paid off, so Stripe must end equal to the ledger.
            await load.record(max(load.reversed.values()) + 1)

            deadline = time.monotonic() + DRAIN_TIMEOUT
            while True:
                ledger = await rs.ledger_usage_by_customer(stub, CUSTOMERS)
                stripe = {
                    c: server.state.meter_totals(s, rs.EVENT_NAME) for c, s in CUSTOMERS.items()
                }
                if stripe == ledger:
                    break
                assert time.monotonic() < deadline, (
                    f"not drained in {DRAIN_TIMEOUT} s: ledger {ledger}, Stripe {stripe}\n"
                    f"{process.output()[-3000:]}"
                )
                await asyncio.sleep(0.2)
        assert await asyncio.to_thread(process.terminate) == 0
    finally:
        await asyncio.to_thread(process.kill)

    assert process.starts == KILLS + 1
    planned, unsent, parked = _database_facts(database_path)
    assert (unsent, parked) == (0, [])
    assert rs.stripe_events(server) == planned
    assert rs.duplicate_identifiers(server) == []
    assert server.state.stream_rejections == []
    for customer in BUCKETS:
        grants = server.state.grants_for(CUSTOMERS[customer])
        assert [g["metadata"]["bucket_id"] for g in grants] == [f"bucket-{customer}"]
        assert grants[0]["amount"]["monetary"] == {"currency": "usd", "value": 25 * 99}
    report = await rs.run_cli("report", "--once", env=env, cwd=tmp_path)
    assert report.code == 0, report.output
    assert "planned 0 entries, sent 0 meter events, created 0 credit grants" in report.output
    verify = await rs.run_cli("verify", env=env, cwd=tmp_path)
    assert verify.code == 0, verify.output
    reconciled = await rs.run_cli("reconcile", env=env, cwd=tmp_path)
    assert reconciled.code == 0, reconciled.output
    assert "no differences" in reconciled.output
