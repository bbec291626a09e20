"""`rating-service status`: an operator sees each customer's buckets, month, pending work and
how far Stripe trails the ledger, as text for a terminal or JSON for a script."""

from __future__ import annotations

import json

import grpc
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import ServiceProcess
from support import create_bucket, customer_on_rate_card, record

CUSTOMER = "acme"
OTHER = "globex"


async def six_outcomes_past_a_four_unit_bucket_and_one_pending(server: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        await customer_on_rate_card(stub, CUSTOMER)
        await customer_on_rate_card(stub, OTHER)
        await stub.PutCustomer(
            pb.PutCustomerRequest(
                customer_id=CUSTOMER, rate_card_id=f"card-{CUSTOMER}", stripe_customer_id="cus_1"
            )
        )
        await create_bucket(stub, CUSTOMER, "annual", 4)
        for n in range(6):
            await stub.RecordOutcome(record(CUSTOMER, f"done-{n}"))
        await stub.RecordOutcome(record(CUSTOMER, "open-1", state=pb.OUTCOME_STATE_PENDING))


async def test_status_json_shows_a_customers_buckets_month_pending_and_reporter_backlog(
    server: ServiceProcess,
) -> None:
    await six_outcomes_past_a_four_unit_bucket_and_one_pending(server)

    result = server.run("status", CUSTOMER, "--json")

    assert result.returncode == 0, result.stdout
    (customer,) = json.loads(result.stdout)["customers"]
    assert customer["customer_id"] == CUSTOMER
    assert customer["stripe_customer_id"] == "cus_1"
    assert customer["period_outcomes"] == 6
    assert customer["period_charged"] == {"currency": "USD", "amount": "1.98"}
    assert (customer["pending_outcomes"], customer["pending_charge"]["amount"]) == (1, "0.99")
    (bucket,) = customer["buckets"]
    assert (bucket["bucket_id"], bucket["quantity"], bucket["remaining"]) == ("annual", 4, 0)
    # No reporter runs here: every entry waits to be planned, oldest first.
    reporter = customer["reporter"]
    assert reporter["entries_unplanned"] == customer["ledger_sequence"] > 0
    assert reporter["oldest_unplanned_at"] is not None
    assert (reporter["events_unsent"], reporter["parked_error"]) == (0, None)


async def test_status_lists_every_customer_and_says_whose_usage_waits_for_a_stripe_id(
    server: ServiceProcess,
) -> None:
    await six_outcomes_past_a_four_unit_bucket_and_one_pending(server)

    result = server.run("status")

    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert f"customer {CUSTOMER} (cus_1)" in lines
    assert f"customer {OTHER} (no Stripe customer id: usage waits)" in lines
    assert any(line.startswith("  bucket annual (resolution, exhausted): 0 of 4") for line in lines)


def test_status_of_an_unknown_customer_exits_1(server: ServiceProcess) -> None:
    result = server.run("status", "nobody")

    assert result.returncode == 1
    assert "no customer 'nobody'" in result.stdout
