"""``rating-service stripe setup --check``: exit 1 naming each priced outcome type's missing
meter, 0 once ``stripe setup`` has made it.

Driven through the command line on the database of a running service whose rate card
prices two outcome types, against the Stripe test server, where one of the two meters
exists already (made in Stripe by hand).
"""

from __future__ import annotations

import reporter_support as rs
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
operator = rs.operator

MADE_BY_HAND = rs.EVENT_NAME
MISSING = "escalation"


async def test_setup_check_names_the_missing_meter_until_setup_makes_it(
    stub: rating_pb2_grpc.RatingServiceStub,
    stripe_test_server: StripeTestServer,
    operator: rs.Operator,
) -> None:
    await rs.put_card(stub, "standard", "0.99", outcome_types=(MADE_BY_HAND, MISSING))
    existing = await rs.create_meter_behind_the_reporters_back(stripe_test_server, MADE_BY_HAND)

    before = await operator("stripe", "setup", "--check")
    meters_after_the_check = [m["event_name"] for m in stripe_test_server.state.meters.all()]
    made = await operator("stripe", "setup")
    after = await operator("stripe", "setup", "--check")

    assert before.code == 1, before.output
    assert f"meter {MISSING}: MISSING" in before.output
    assert f"meter {MADE_BY_HAND}: {existing} (exists)" in before.output
    assert meters_after_the_check == [MADE_BY_HAND], "--check made a meter"
    assert made.code == 0, made.output
    created = stripe_test_server.state.meters.by_event_name(MISSING)
    assert created is not None, made.output
    assert f"meter {MISSING}: {created['id']} (created)" in made.output
    assert after.code == 0, after.output
    assert "MISSING" not in after.output
    assert f"meter {MISSING}: {created['id']} (exists)" in after.output
    assert sorted(m["event_name"] for m in stripe_test_server.state.meters.all()) == sorted(
        [MADE_BY_HAND, MISSING]
    )
