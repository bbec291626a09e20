"""RATING_STRIPE_METERS and RATING_STRIPE_PRICES: an outcome type's usage goes to the meter
named for it, and its buckets' credit grants apply to exactly the price ids named for it.

Driven through the command line (``stripe setup``, ``report --once``, ``reconcile``) with
both settings, on the database of a running service, against the Stripe test server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import reporter_support as rs
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server

METER = "ai_resolutions"
"""The meter ``resolution`` outcomes are reported to: not the outcome type's own name."""
PRICES = ("price_resolutions_base", "price_resolutions_overage")
CUSTOMER = "mapped-co"
STRIPE_ID = "cus_mapped"
OUTCOMES = 12


@pytest.fixture
def operator(
    database_url: str, stripe_test_server: StripeTestServer, tmp_path: Path
) -> rs.Operator:
    return rs.Operator(
        database_url,
        stripe_test_server,
        tmp_path,
        RATING_STRIPE_METERS=f"{rs.EVENT_NAME}={METER}",
        RATING_STRIPE_PRICES=f"{rs.EVENT_NAME}={'|'.join(PRICES)}",
    )


async def test_usage_lands_on_the_configured_meter_and_grants_apply_to_the_configured_prices(
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    await rs.put_card(stub, "standard", "0.99")
    stripe_test_server.add_customer(STRIPE_ID)
    await rs.put_customer(stub, CUSTOMER, STRIPE_ID, "standard")
    await rs.create_bucket(stub, CUSTOMER, f"bucket-{CUSTOMER}", 10)
    await rs.record_all(stub, [rs.outcome(CUSTOMER, f"o-{i}") for i in range(OUTCOMES)])

    setup = await operator("stripe", "setup")
    report = await operator("report", "--once")
    reconciled = await operator("reconcile")

    assert setup.code == 0, setup.output
    assert [m["event_name"] for m in stripe_test_server.state.meters.all()] == [METER]
    assert report.code == 0, report.output
    events = stripe_test_server.state.events
    assert events, report.output
    assert {e.event_name for e in events} == {METER}
    ledger = await rs.ledger_usage(stub, CUSTOMER)
    assert stripe_test_server.state.meter_totals(STRIPE_ID, METER) == ledger == OUTCOMES
    (grant,) = stripe_test_server.state.grants_for(STRIPE_ID)
    assert grant["applicability_config"] == {"scope": {"prices": [{"id": p} for p in PRICES]}}
    assert reconciled.code == 0, reconciled.output
    assert "no differences" in reconciled.output
