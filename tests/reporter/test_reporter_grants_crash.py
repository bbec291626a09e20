"""Grants replaced under manual draws and voids while ``serve`` is SIGKILLed mid-reporting.

``rating-service serve`` runs as a real process with its reporter, aimed at the
Stripe test server. The workload of ``grants_workload`` is played through it
in three phases while the process is SIGKILLed ten times, each time after a
random number (1 to 4) of its calls to Stripe, and restarted on the same
SQLite file; other customers' outcomes keep the reporter busy meanwhile. Then
it is left to drain. The end state must be the workload's (the same as under
Stripe's faults), the request log must show nothing done twice, and
``verify`` and ``reconcile`` must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from pathlib import Path

import grpc
import reporter_support as rs
from grants_workload import CALL_TIMEOUT, GrantsWorkload, sent_twice, until_done
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server

KILLS = 10
PHASE_AT = {0: 1, 3: 2, 6: 3}
"""Before which kill each phase of the workload is played."""
CALLS_BEFORE_KILL = (1, 4)
BUSY = {f"busy-{i}": f"cus_busy_{i}" for i in range(3)}
"""Customers whose outcomes keep the reporter calling Stripe between phases."""
KILL_PHASE_TIMEOUT = 90.0
DRAIN_TIMEOUT = 60.0
SEED = 20261206


async def _keep_busy(stub: rating_pb2_grpc.RatingServiceStub, stop: asyncio.Event) -> None:
    for n in range(1_000_000):
        if stop.is_set():
            return
        batch = pb.RecordOutcomesRequest(requests=[rs.outcome(c, f"{c}-busy{n}") for c in BUSY])
        await until_done(
            lambda b=batch: stub.RecordOutcomes(b, timeout=CALL_TIMEOUT, wait_for_ready=True)
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


def _planned_events(database_path: Path, stripe_ids: dict[str, str]) -> dict[str, tuple[str, int]]:
    with contextlib.closing(sqlite3.connect(database_path)) as db:
        return {
            identifier: (stripe_ids[customer], value)
            for identifier, customer, value in db.execute(
                "SELECT identifier, customer_id, value FROM stripe_meter_events"
            )
        }


async def test_draws_and_voids_with_serve_sigkilled_ten_times_end_as_the_ledger_says(
    stripe_test_server: StripeTestServer, tmp_path: Path
) -> None:
    server = stripe_test_server
    rng = random.Random(SEED)
    workload = GrantsWorkload()
    process = rs.serve_process(
        tmp_path,
        server,
        RATING_STRIPE_WINDOW="1",
        RATING_STRIPE_RATE="500",
        RATING_RECONCILE_INTERVAL="0",
    )
    env = rs.cli_env(
        f"sqlite+aiosqlite:///{process.database_path}", server, RATING_STRIPE_WINDOW="1"
    )
    await asyncio.to_thread(process.start)
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = rating_pb2_grpc.RatingServiceStub(channel)
            await workload.set_up(stub, server)
            for customer, stripe_id in BUSY.items():
                server.add_customer(stripe_id)
                await rs.put_customer(stub, customer, stripe_id, "standard")
            setup = await rs.run_cli("stripe", "setup", env=env, cwd=tmp_path)
            assert setup.code == 0, setup.output
            stop = asyncio.Event()
            busy = asyncio.create_task(_keep_busy(stub, stop))
            try:
                deadline = time.monotonic() + KILL_PHASE_TIMEOUT
                phases = {1: workload.phase_1, 2: workload.phase_2, 3: workload.phase_3}
                for kill in range(KILLS):
                    if kill in PHASE_AT:
                        await phases[PHASE_AT[kill]](stub)
                    await rs.kill_after_stripe_calls(
                        process, server, rng, deadline, CALLS_BEFORE_KILL
                    )
            finally:
                stop.set()
                await asyncio.wait_for(busy, KILL_PHASE_TIMEOUT)

            deadline = time.monotonic() + DRAIN_TIMEOUT
            while not await workload.settled(stub, server):
                assert time.monotonic() < deadline, (
                    f"not drained: {workload.stripe_usage(server)} "
                    f"{workload.live_grants(server)}\n{process.output()[-3000:]}"
                )
                await asyncio.sleep(0.2)
            busy_ledger = await rs.ledger_usage_by_customer(stub, BUSY)
            while {c: server.state.meter_totals(s, rs.EVENT_NAME) for c, s in BUSY.items()} != (
                busy_ledger
            ):
                assert time.monotonic() < deadline, process.output()[-3000:]
                await asyncio.sleep(0.2)
        assert await asyncio.to_thread(process.terminate) == 0
    finally:
        await asyncio.to_thread(process.kill)

    assert process.starts == KILLS + 1
    assert workload.live_grants(server) == workload.expected_grants()
    assert sent_twice(server) == {}
    stripe_ids = {**workload.stripe_ids, **BUSY}
    assert rs.stripe_events(server) == _planned_events(process.database_path, stripe_ids)
    report = await rs.run_cli("report", "--once", env=env, cwd=tmp_path)
    assert report.code == 0, report.output
    verify = await rs.run_cli("verify", env=env, cwd=tmp_path)
    assert verify.code == 0, verify.output
    reconciled = await rs.run_cli("reconcile", env=env, cwd=tmp_path)
    assert reconciled.code == 0, reconciled.output
    assert "no differences" in reconciled.output
