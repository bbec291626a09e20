"""Two replicas on one ledger, each running the reporter: Stripe still ends with exactly the
ledger's usage and one credit grant per bucket.

``serve`` runs the reporter whenever ``STRIPE_API_KEY`` is set, so every
replica of a deployment reports. The two must not send the same usage twice
nor create a bucket's grant twice: the cursor in the ledger and the events'
identifiers have to hold across processes, not only within one. Even passes
forced on both at once (``run_once``, as ``report --once`` beside a running
``serve`` would) come out right; in the long run (``run_forever``) one
replica holds the reporter's lease and the other stands by, so nothing is
even sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service, start
from rating_service.config import Settings
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway

WORKLOAD = rs.Workload(customers=12, per_customer=60, quick_customers=2, bucket_customers=4)
SETTINGS = ReporterSettings(window=timedelta(seconds=1), idle_interval=0.05, max_backoff=0.2)


@pytest.fixture
async def second_replica(
    service: Service, database_url: str, clock: rs.MovableClock
) -> AsyncIterator[Service]:
    """Another service on the same ledger (on SQLite, another process would be the same)."""
    replica = await start(Settings(database_url=database_url, listen="127.0.0.1:0"), clock)
    yield replica
    await replica.stop(grace=1.0)


async def set_up(
    stub: rating_pb2_grpc.RatingServiceStub,
    server: StripeTestServer,
    service: Service,
    gateway: StripeGateway,
) -> dict[str, pb.Bucket]:
    """The workload's customers and buckets, and its meter in Stripe; the buckets by id."""
    buckets = await WORKLOAD.set_up(stub, server)
    await ensure_meters(service.store, gateway, SETTINGS, create=True)
    return buckets


async def drain_together(reporters: list[Reporter], service: Service) -> None:
    """Both reporters at once (which of them sends what is up to the race), until
    neither has anything left."""
    await asyncio.gather(*(rs.drain(r, service.store) for r in reporters))
    await asyncio.gather(*(rs.drain(r, service.store) for r in reporters))


async def test_two_replicas_reporting_for_good_report_through_one_and_send_nothing_twice(
    service: Service,
    second_replica: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: rs.MovableClock,
    stripe_test_server: StripeTestServer,
    stripe_gateway: StripeGateway,
) -> None:
    plan = WORKLOAD.plan
    await set_up(stub, stripe_test_server, service, stripe_gateway)
    stop = asyncio.Event()
    running = [
        asyncio.create_task(Reporter(r.store, stripe_gateway, SETTINGS, clock).run_forever(stop))
        for r in (service, second_replica)
    ]
    try:
        await WORKLOAD.record_early(stub)
        await WORKLOAD.settle_and_finish(stub)
        ledger = await rs.ledger_usage_by_customer(stub, plan.customers)
        for _ in range(600):  # up to 30 s on a busy machine
            if rs.stripe_usage(stripe_test_server, plan) == ledger:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*running)

    assert sum(ledger.values()) > 0
    assert rs.stripe_usage(stripe_test_server, plan) == ledger
    assert stripe_test_server.state.stream_duplicates == 0


async def test_two_replicas_reporting_at_once_send_each_outcome_once_and_each_grant_once(
    service: Service,
    second_replica: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: rs.MovableClock,
    stripe_test_server: StripeTestServer,
    stripe_gateway: StripeGateway,
) -> None:
    plan = WORKLOAD.plan
    buckets = await set_up(stub, stripe_test_server, service, stripe_gateway)
    reporters = [
        Reporter(replica.store, stripe_gateway, SETTINGS, clock)
        for replica in (service, second_replica)
    ]

    await WORKLOAD.record_early(stub)
    await WORKLOAD.reverse_before_reporting(stub)
    await drain_together(reporters, service)
    await WORKLOAD.reverse_after_reporting(stub)
    await WORKLOAD.settle_and_finish(stub)
    await drain_together(reporters, service)

    ledger = await rs.ledger_usage_by_customer(stub, plan.customers)
    assert sum(ledger.values()) > 0
    assert rs.stripe_usage(stripe_test_server, plan) == ledger
    assert rs.duplicate_identifiers(stripe_test_server) == []
    assert rs.grants_per_bucket(stripe_test_server, plan, buckets) == dict.fromkeys(buckets, 1)
    result = await reconcile(service.store, stripe_gateway, SETTINGS, clock())
    assert result.differences == ()
