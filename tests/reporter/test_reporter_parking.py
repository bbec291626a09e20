"""A customer Stripe does not know is parked with a clear error; the others are reported.

Driven through the command line as an operator would (``stripe setup``,
``report --once``, ``report --once --retry-parked``, ``reconcile``) on the
database of a running service, against the Stripe test server.
"""

from __future__ import annotations

import pytest
import reporter_support as rs
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service
from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
operator = rs.operator

KNOWN = {"good-a": "cus_good_a", "good-b": "cus_good_b"}
LOST = "lost-co"
UNKNOWN_ID = "cus_nobody"
FIXED_ID = "cus_found"
OUTCOMES = 30


@pytest.fixture
async def lost_customer(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    """Two customers Stripe knows and one whose Stripe id it does not, each with usage and a
    bucket; the meters set up."""
    await rs.put_card(stub, "standard", "0.99")
    for customer, stripe_id in KNOWN.items():
        stripe_test_server.add_customer(stripe_id)
        await rs.put_customer(stub, customer, stripe_id, "standard")
    await rs.put_customer(stub, LOST, UNKNOWN_ID, "standard")
    for customer in (*KNOWN, LOST):
        await rs.create_bucket(stub, customer, f"bucket-{customer}", 10)
        await rs.record_all(
            stub, [rs.outcome(customer, f"{customer}-{i}") for i in range(OUTCOMES)]
        )
    setup = await operator("stripe", "setup")
    assert setup.code == 0, setup.output


def _grant_buckets(server: StripeTestServer, stripe_id: str) -> list[str]:
    return [g["metadata"]["bucket_id"] for g in server.state.grants_for(stripe_id)]


@pytest.mark.usefixtures("lost_customer")
async def test_a_customer_unknown_to_stripe_is_parked_and_the_others_reported(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    """`report --once` exits non-zero naming the parked customer; the others are in Stripe."""
    report = await operator("report", "--once")

    assert report.code != 0, report.output
    assert f"PARKED {LOST}: " in report.output
    assert UNKNOWN_ID in report.output.split(f"PARKED {LOST}: ", 1)[1].splitlines()[0]
    backlog = await rs.backlog(service.store)
    assert list(backlog.parked) == [LOST]
    assert UNKNOWN_ID in backlog.parked[LOST]
    for customer, stripe_id in KNOWN.items():
        ledger = await rs.ledger_usage(stub, customer)
        assert stripe_test_server.state.meter_totals(stripe_id, rs.EVENT_NAME) == ledger == 30
        assert _grant_buckets(stripe_test_server, stripe_id) == [f"bucket-{customer}"]
    assert [e for e in stripe_test_server.state.events if e.customer == UNKNOWN_ID] == []
    assert stripe_test_server.state.stream_rejections == []


@pytest.mark.usefixtures("lost_customer")
async def test_a_parked_customer_stays_parked_until_retried_even_once_fixed(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    """Fixing the Stripe id alone does not resume reporting: `--retry-parked` does."""
    await operator("report", "--once")
    stripe_test_server.add_customer(FIXED_ID)
    await rs.put_customer(stub, LOST, FIXED_ID, "standard")

    report = await operator("report", "--once")

    assert report.code != 0, report.output
    assert f"PARKED {LOST}: " in report.output
    assert stripe_test_server.state.meter_totals(FIXED_ID, rs.EVENT_NAME) == 0


@pytest.mark.usefixtures("lost_customer")
async def test_after_fixing_the_stripe_id_retry_parked_reports_everything(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    """With a Stripe id Stripe knows, `--retry-parked` reports all and reconcile is clean."""
    await operator("report", "--once")
    stripe_test_server.add_customer(FIXED_ID)
    await rs.put_customer(stub, LOST, FIXED_ID, "standard")

    report = await operator("report", "--once", "--retry-parked")

    assert report.code == 0, report.output
    assert f"resumed 1 parked customers ['{LOST}']" in report.output
    assert "PARKED" not in report.output
    assert (await rs.backlog(service.store)).parked == {}
    ids = {**KNOWN, LOST: FIXED_ID}
    for customer, stripe_id in ids.items():
        ledger = await rs.ledger_usage(stub, customer)
        assert stripe_test_server.state.meter_totals(stripe_id, rs.EVENT_NAME) == ledger == 30
        assert _grant_buckets(stripe_test_server, stripe_id) == [f"bucket-{customer}"]
    reconciled = await operator("reconcile")
    assert reconciled.code == 0, reconciled.output
    assert "no differences" in reconciled.output


async def test_usage_recorded_before_its_meter_exists_reaches_stripe_once_it_is_set_up(
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    """Reporting before `stripe setup` keeps the usage owed instead of losing it to Stripe."""
    await rs.put_card(stub, "standard", "0.99")
    stripe_test_server.add_customer("cus_early")
    await rs.put_customer(stub, "early-co", "cus_early", "standard")
    await rs.record_all(stub, [rs.outcome("early-co", f"o-{i}") for i in range(OUTCOMES)])
    too_early = await operator("report", "--once")
    await operator("stripe", "setup")

    report = await operator("report", "--once", "--retry-parked")

    assert too_early.code != 0, too_early.output
    assert report.code == 0, report.output
    ledger = await rs.ledger_usage(stub, "early-co")
    assert stripe_test_server.state.meter_totals("cus_early", rs.EVENT_NAME) == ledger == 30
