"""Fail-over of the reporter: two ``serve`` replicas on one PostgreSQL ledger, the leader
SIGKILLed while it reports draws and voids; the stand-by takes the lease and finishes.

Replica A starts first and takes the reporter's lease (``rating_stripe_reporter_leader``
is 1 on it, 0 on B); both reconcile every second, but only the leader does. The workload
of ``grants_workload`` goes through B. Mid-reporting (after a few of A's calls to
Stripe following the second phase) A is SIGKILLed: B's gauge turns 1, B finishes the
reporting and starts reconciling, and the end state is the workload's, with nothing done
twice by the request log.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import reporter_support as rs
from e2e.service_process import ServiceProcess, free_port
from grants_workload import GrantsWorkload, sent_twice
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server

RECONCILED = re.compile(r"reconcile: |Stripe drift: |reconciliation (skipped|failed)")
"""What a replica logs when it reconciles (clean, drift, or Stripe failing meanwhile)."""
CALLS_BEFORE_KILL = 3
SETTLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Replica:
    process: ServiceProcess
    metrics: str

    async def leads(self) -> bool:
        return await rs.scrape(self.metrics, "rating_stripe_reporter_leader") == 1.0

    async def stands_by(self) -> bool:
        return await rs.scrape(self.metrics, "rating_stripe_reporter_leader") == 0.0

    def reconciliations(self) -> int:
        return len(RECONCILED.findall(self.process.output()))

    def reconciled(self) -> bool:
        return self.reconciliations() > 0


def _replica(root: Path, server: StripeTestServer, database_url: str) -> Replica:
    root.mkdir()
    metrics = f"127.0.0.1:{free_port()}"
    process = rs.serve_process(
        root,
        server,
        RATING_DATABASE_URL=database_url,
        RATING_METRICS_LISTEN=metrics,
        RATING_STRIPE_WINDOW="1",
        RATING_STRIPE_RATE="500",
        RATING_RECONCILE_INTERVAL="1",
    )
    return Replica(process, metrics)


@pytest.fixture
async def replicas(
    stripe_test_server: StripeTestServer, postgres_database: str, tmp_path: Path
) -> AsyncIterator[tuple[Replica, Replica]]:
    """A leading, then B standing by, on one fresh PostgreSQL database."""
    a = _replica(tmp_path / "a", stripe_test_server, postgres_database)
    b = _replica(tmp_path / "b", stripe_test_server, postgres_database)
    try:
        await asyncio.to_thread(a.process.start)
        await rs.eventually(a.leads, "A does not lead")
        await asyncio.to_thread(b.process.start)
        await rs.eventually(b.stands_by, "B does not stand by")
        yield a, b
    finally:
        for replica in (a, b):
            await asyncio.to_thread(replica.process.kill)


async def test_the_stand_by_takes_over_a_killed_leader_and_finishes_reporting_once(
    stripe_test_server: StripeTestServer,
    replicas: tuple[Replica, Replica],
    postgres_database: str,
    tmp_path: Path,
) -> None:
    server = stripe_test_server
    a, b = replicas
    workload = GrantsWorkload()
    async with grpc.aio.insecure_channel(b.process.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        await workload.set_up(stub, server)
        await rs.create_meter_behind_the_reporters_back(server, rs.EVENT_NAME)
        await workload.phase_1(stub)
        # Two of the leader's reconciliations later, the stand-by (on the same interval)
        # has had its turn at least once: it must have let it pass.
        seen = a.reconciliations()
        await rs.eventually(lambda: a.reconciliations() >= seen + 2, "A does not reconcile")
        b_stood_by = b.process.output()

        await workload.phase_2(stub)
        calls = len(server.requests)
        await rs.eventually(
            lambda: len(server.requests) - calls >= CALLS_BEFORE_KILL, "A does not report"
        )
        await asyncio.to_thread(a.process.kill)
        await rs.eventually(b.leads, "B did not take the lease")
        await workload.phase_3(stub)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not await workload.settled(stub, server):
            assert time.monotonic() < deadline, (
                f"not settled: {workload.stripe_usage(server)} {workload.live_grants(server)}"
            )
            await asyncio.sleep(0.2)
        await rs.eventually(b.reconciled, "B, now leading, never reconciled")

    assert not RECONCILED.search(b_stood_by), "the stand-by reconciled"
    assert workload.live_grants(server) == workload.expected_grants()
    assert sent_twice(server) == {}
    reconciled = await rs.run_cli(
        "reconcile", env=rs.cli_env(postgres_database, server), cwd=tmp_path
    )
    assert reconciled.code == 0, reconciled.output
