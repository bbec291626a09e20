"""The reporter end to end: the real service and database, the real stripe SDK, the Stripe
test server.

10,000 outcomes of 50 customers (20 % pending, then confirmed or settled by
their window; 5 % reversed, half before and half after a report; buckets for
10 customers) are reported by ``Reporter`` over ``StripeGateway``; Stripe must
then hold what the ledger holds, and reconciliation must find no difference.
Reconciling right after reporting must count the usage of the current minute
too (the Stripe test server then follows the service's clock, moved to just
past a minute's start).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway

WORKLOAD = rs.Workload(customers=50, per_customer=200, quick_customers=5, bucket_customers=10)
SETTINGS = ReporterSettings(window=timedelta(seconds=1), idle_interval=0.05, max_backoff=0.2)


async def test_stripe_ends_with_exactly_the_ledgers_usage_and_one_grant_per_bucket(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: rs.MovableClock,
    stripe_test_server: StripeTestServer,
    stripe_gateway: StripeGateway,
    database_url: str,
    tmp_path: Path,
) -> None:
    """10,000 outcomes with settlements and reversals: Stripe's totals equal the ledger's net."""
    plan = WORKLOAD.plan
    assert WORKLOAD.total_outcomes == 10_000
    buckets = await WORKLOAD.set_up(stub, stripe_test_server)
    _, missing = await ensure_meters(service.store, stripe_gateway, SETTINGS, create=True)
    assert missing == []
    reporter = Reporter(service.store, stripe_gateway, SETTINGS, clock)

    await WORKLOAD.record_early(stub)
    await WORKLOAD.reverse_before_reporting(stub)
    first = await rs.drain(reporter, service.store)
    await WORKLOAD.reverse_after_reporting(stub)
    await WORKLOAD.settle_and_finish(stub)
    second = await rs.drain(reporter, service.store)

    assert sum(r.events_sent for r in first) > 0, "the first report sent nothing"
    assert sum(r.events_sent for r in second) > 0, "the second report sent nothing"
    ledger = await rs.ledger_usage_by_customer(stub, plan.customers)
    assert sum(ledger.values()) > 0
    assert rs.stripe_usage(stripe_test_server, plan) == ledger
    assert rs.duplicate_identifiers(stripe_test_server) == []
    assert rs.stripe_events(stripe_test_server) == await rs.planned_events(service.store, plan)
    assert stripe_test_server.state.stream_rejections == []
    for bucket_id, bucket in buckets.items():
        customer = bucket_id.removeprefix("bucket-")
        grants = [
            g
            for g in stripe_test_server.state.grants_for(plan.stripe_ids[customer])
            if g["metadata"].get("bucket_id") == bucket_id
        ]
        assert len(grants) == 1, f"{bucket_id}: {len(grants)} credit grants"
        # Worth the card's price per unit (what Stripe meters a covered outcome at), also
        # for the buckets the customer bought at 0.50.
        expected = rs.cents(0, 990_000_000, bucket.quantity)
        assert grants[0]["amount"]["monetary"] == {"currency": "usd", "value": expected}
        assert grants[0]["category"] == (
            "promotional" if bucket.source == pb.BUCKET_SOURCE_PROMOTIONAL else "paid"
        )
        assert grants[0]["expires_at"] == bucket.valid_until.seconds
    result = await reconcile(service.store, stripe_gateway, SETTINGS, clock())
    assert result.differences == ()
    assert (result.grants_checked, result.backlog) == (len(buckets), 0)
    cli = await rs.run_cli(
        "reconcile",
        env=rs.cli_env(database_url, stripe_test_server, RATING_STRIPE_WINDOW="1"),
        cwd=tmp_path,
    )
    assert cli.code == 0, cli.output
    assert "checked; no differences (in money too" in cli.output


async def test_reconcile_right_after_reporting_counts_the_current_minutes_usage(
    service: Service, stub: rating_pb2_grpc.RatingServiceStub, clock: rs.MovableClock
) -> None:
    """Usage reported a moment ago is in Stripe: reconciling at once finds no difference."""
    now = clock()
    into_minute = now.second + now.microsecond / 1e6
    clock.advance(timedelta(seconds=60 - into_minute + 5))  # 5 s into a minute: all below fits
    async with StripeTestServer(clock=lambda: clock().timestamp()) as server:
        gateway = StripeGateway(
            rs.API_KEY, api_base=server.base_url, meter_events_base=server.base_url, clock=clock
        )
        try:
            await rs.put_card(stub, "standard", "0.99")
            server.add_customer("cus_now")
            await rs.put_customer(stub, "now-co", "cus_now", "standard")
            await ensure_meters(service.store, gateway, SETTINGS, create=True)
            await rs.record_all(stub, [rs.outcome("now-co", f"o-{i}") for i in range(3)])
            await rs.drain(Reporter(service.store, gateway, SETTINGS, clock), service.store)
            assert server.state.meter_totals("cus_now", rs.EVENT_NAME) == 3

            result = await reconcile(service.store, gateway, SETTINGS, clock())
        finally:
            await gateway.close()

    assert result.differences == ()
