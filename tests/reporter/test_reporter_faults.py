"""The reporter against a Stripe that fails one call in five: same end state, nothing counted twice.

The end-to-end workload (10,000 outcomes of 50 customers, pending ones settled,
5 % reversed before and after a report, 10 buckets) is reported by
``Reporter.run_forever`` while the Stripe test server fails 20 % of the calls
at random with 429s, 500s, timeouts and connection resets, half of the time
*after* applying them (Stripe did the work, the answer was lost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import reporter_support as rs
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.service.store import LedgerStore
from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway

WORKLOAD = rs.Workload(customers=50, per_customer=200, quick_customers=5, bucket_customers=10)
SETTINGS = ReporterSettings(window=timedelta(seconds=1), idle_interval=0.05, max_backoff=0.2)
FAULT_RATE = 0.2
BEFORE_APPLY = (
    "rate_limited",
    "rate_limited_no_retry",
    "server_error",
    "timeout",
    "connection_reset",
)
AFTER_APPLY = ("server_error", "timeout", "connection_reset")
"""Faults that strike once the operation ran: the work is done, the answer lost."""
ANSWERED_AFTER_APPLY = ("server_error", "connection_reset")
STREAM = "/v2/billing/meter_event_stream"
GRANTS = "/v1/billing/credit_grants"
ROTATION = 0.25
"""Seconds between switching the random faults from before-apply to after-apply and back."""
REPORT_TIMEOUT = 120.0


def _script_every_fault_once(server: StripeTestServer) -> None:
    """Each kind strikes at least once, whatever the random draws: the first matching
    requests fail before the operation, or after it on the stream and on grant creation."""
    for kind in BEFORE_APPLY:
        server.faults.inject(kind)
    server.faults.inject("session_expired", path=STREAM)
    for kind in AFTER_APPLY:
        server.faults.inject(kind, path=STREAM, after_apply=True)
        server.faults.inject(kind, path=GRANTS, method="POST", after_apply=True)


async def _wait_until_drained(
    store: LedgerStore, task: asyncio.Task[None], until: Callable[[], bool] = lambda: True
) -> None:
    """Bounded: nothing is left to plan, send or grant (and ``until()`` holds)."""
    deadline = time.monotonic() + REPORT_TIMEOUT
    while True:
        assert not task.done(), f"the reporter stopped: {task}"
        backlog = await rs.backlog(store)
        drained = (backlog.entries_unplanned, backlog.events_unsent, backlog.grants_uncreated)
        if drained == (0, 0, 0) and until():
            return
        assert time.monotonic() < deadline, f"not reported within {REPORT_TIMEOUT} s: {backlog}"
        await asyncio.sleep(0.2)


async def test_stripe_failing_one_call_in_five_ends_with_exactly_the_ledgers_usage(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: rs.MovableClock,
    stripe_test_server: StripeTestServer,
    stripe_gateway: StripeGateway,
) -> None:
    """Retries after lost answers are deduplicated by Stripe; its totals equal the ledger's."""
    server = stripe_test_server
    plan = WORKLOAD.plan
    buckets = await WORKLOAD.set_up(stub, server)
    await ensure_meters(service.store, stripe_gateway, SETTINGS, create=True)
    reporter = Reporter(service.store, stripe_gateway, SETTINGS, clock)
    stop = asyncio.Event()
    _script_every_fault_once(server)
    faults = asyncio.create_task(
        rs.rotate_faults(server, stop, BEFORE_APPLY, AFTER_APPLY, rate=FAULT_RATE, every=ROTATION)
    )

    await WORKLOAD.record_early(stub)
    await WORKLOAD.reverse_before_reporting(stub)
    running = asyncio.create_task(reporter.run_forever(stop))
    try:
        await _wait_until_drained(service.store, running)
        await WORKLOAD.reverse_after_reporting(stub)
        await WORKLOAD.settle_and_finish(stub)
        ledger = await rs.ledger_usage_by_customer(stub, plan.customers)
        await _wait_until_drained(
            service.store, running, lambda: rs.stripe_usage(server, plan) == ledger
        )
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(running, faults), 10)

    assert rs.stripe_usage(server, plan) == ledger
    assert rs.stripe_events(server) == await rs.planned_events(service.store, plan)
    assert rs.duplicate_identifiers(server) == []
    assert server.state.stream_duplicates > 0, "no retry re-sent an event Stripe already had"
    struck = {kind.value for kind in server.faults.injected}
    assert struck >= {*BEFORE_APPLY, "session_expired"}
    # (Requests held by a timeout are logged once the server stops: not yet.)
    lost = {(r.path, r.fault.value) for r in server.requests if r.applied and r.fault}
    assert lost >= {(path, kind) for path in (STREAM, GRANTS) for kind in ANSWERED_AFTER_APPLY}
    assert rs.grants_per_bucket(server, plan, buckets) == dict.fromkeys(buckets, 1)
    result = await reconcile(service.store, stripe_gateway, SETTINGS, clock())
    assert result.differences == ()
