"""Grants replaced under manual draws and voids, with Stripe failing one call in five.

The workload of ``grants_workload`` (buckets drawn by outcomes and by hand,
voided with outcomes still holding units, those released or confirmed later,
reversals) runs while ``Reporter.run_forever`` reports it and the Stripe test
server fails 20 % of the calls at random (429s, 500s, timeouts, connection
resets), alternately before and *after* applying them (Stripe did the work,
the answer was lost), plus a lost answer on each grant creation and void. The
end state must be the workload's: Stripe's usage equals the ledger's, each
bucket has one live grant worth what the ledger says; the request log shows
nothing done twice; reconciliation finds no difference.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import reporter_support as rs
from grants_workload import GrantsWorkload, sent_twice
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service
from rating_service.reporter.loop import Reporter
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway

SETTINGS = ReporterSettings(window=timedelta(seconds=1), idle_interval=0.05, max_backoff=0.2)
FAULT_RATE = 0.2
BEFORE_APPLY = ("rate_limited", "server_error", "timeout", "connection_reset")
AFTER_APPLY = ("server_error", "timeout", "connection_reset")
GRANTS = "/v1/billing/credit_grants"
VOID = "/v1/billing/credit_grants/{id}/void"
ROTATION = 0.25
SETTLE_TIMEOUT = 90.0


async def test_draws_and_voids_under_stripe_failing_one_call_in_five_end_as_the_ledger_says(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: rs.MovableClock,
    stripe_test_server: StripeTestServer,
    stripe_gateway: StripeGateway,
) -> None:
    server = stripe_test_server
    workload = GrantsWorkload()
    await workload.set_up(stub, server)
    await ensure_meters(service.store, stripe_gateway, SETTINGS, create=True)
    for path in (GRANTS, VOID):
        server.faults.inject("server_error", path=path, method="POST", after_apply=True)
        server.faults.inject("connection_reset", path=path, method="POST", after_apply=True)
    reporter = Reporter(service.store, stripe_gateway, SETTINGS, clock)
    stop = asyncio.Event()
    faults = asyncio.create_task(
        rs.rotate_faults(server, stop, BEFORE_APPLY, AFTER_APPLY, rate=FAULT_RATE, every=ROTATION)
    )
    running = asyncio.create_task(reporter.run_forever(stop))
    try:
        await workload.run(stub, pause=0.5)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not await workload.settled(stub, server):
            assert not running.done(), running
            assert time.monotonic() < deadline, (
                f"not settled: {workload.stripe_usage(server)}, {workload.live_grants(server)}"
            )
            await asyncio.sleep(0.2)
        while (await rs.backlog(service.store)).grants_uncreated:  # older grants voided
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(running, faults), 10)

    assert workload.stripe_usage(server) == await workload.ledger_usage(stub)
    assert workload.live_grants(server) == workload.expected_grants()
    assert sent_twice(server) == {}
    lost = {(r.operation_id, r.fault.value) for r in server.requests if r.applied and r.fault}
    assert {
        ("PostBillingCreditGrants", "server_error"),
        ("PostBillingCreditGrantsIdVoid", "server_error"),
    } <= lost
    struck = sum(server.faults.injected.values())
    assert struck >= 0.1 * len(server.requests), (struck, len(server.requests))
    assert {k.value for k in server.faults.injected} >= {"server_error", "connection_reset"}
    result = await rs.Rig(service, stub, clock, server, stripe_gateway).reconcile(SETTINGS)
    assert result.ok, result.differences
