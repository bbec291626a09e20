"""A customer without a Stripe customer id is not reported: its usage and buckets wait (not
planned, not sent, not parked), and all of them reach Stripe once PutCustomer gives it one.

The reporter (``Reporter`` over the real gateway and SDK) drains the running service's
ledger into the Stripe test server before and after the customer gets its Stripe id;
another customer, with an id from the start, is reported meanwhile.
"""

from __future__ import annotations

import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb

from rating_service.reporter.settings import ReporterSettings

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway
rig = rs.rig

SETTINGS = ReporterSettings()
LATER, LATER_ID = "later-co", "cus_later"
"""Gets its Stripe id only after a first report."""
NOW, NOW_ID = "now-co", "cus_now"
OUTCOMES = 20
REVERSED = 2


async def test_usage_of_a_customer_without_a_stripe_id_waits_and_is_reported_once_it_has_one(
    rig: rs.Rig,
) -> None:
    stub, server = rig.stub, rig.server
    await rs.put_card(stub, "standard", "0.99")
    server.add_customer(NOW_ID)
    await rs.put_customer(stub, NOW, NOW_ID, "standard")
    await rs.put_customer(stub, LATER, "", "standard")
    await rs.create_bucket(stub, LATER, f"bucket-{LATER}", 10)
    await rs.record_all(
        stub, [rs.outcome(c, f"{c}-{i}") for i in range(OUTCOMES) for c in (NOW, LATER)]
    )
    for i in range(REVERSED):
        await stub.ReverseOutcome(
            pb.ReverseOutcomeRequest(customer_id=LATER, outcome_id=f"{LATER}-{i}", reason="x")
        )
    await rig.set_up_meters(SETTINGS)
    reporter = rig.reporter(SETTINGS)

    await rs.drain(reporter, rig.store)
    planned_without_id = await rs.planned_events(rig.store, rs.Plan({NOW: NOW_ID, LATER: ""}))
    stripe_without_id = rs.stripe_events(server)
    grants_without_id = server.state.grants.all()
    parked_without_id = (await rs.backlog(rig.store)).parked
    server.add_customer(LATER_ID)
    await rs.put_customer(stub, LATER, LATER_ID, "standard")
    await rs.drain(reporter, rig.store)

    assert planned_without_id, "the customer with a Stripe id was not reported"
    assert [e for e in planned_without_id.values() if e[0] != NOW_ID] == []
    assert stripe_without_id == planned_without_id
    assert (grants_without_id, parked_without_id) == ([], {})
    ledger = await rs.ledger_usage_by_customer(stub, (NOW, LATER))
    assert ledger == {NOW: OUTCOMES, LATER: OUTCOMES - REVERSED}
    assert rs.stripe_usage(server, rs.Plan({NOW: NOW_ID, LATER: LATER_ID})) == ledger
    (grant,) = server.state.grants_for(LATER_ID)
    assert grant["metadata"]["bucket_id"] == f"bucket-{LATER}"
    assert grant["amount"]["monetary"] == {"currency": "usd", "value": 990}
    assert (await rig.reconcile(SETTINGS)).differences == ()
