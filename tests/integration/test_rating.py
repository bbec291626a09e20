"""Rating: the price in force when an outcome occurred, exactly to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import amount, customer_on_rate_card, put_rate_card, record


async def test_each_settled_outcome_is_charged_exactly_the_rate_card_price(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Three resolutions at USD 0.99 cost exactly USD 2.97, each 0.99."""
    customer = await customer_on_rate_card(stub, price="0.99")

    answers = [await stub.RecordOutcome(record(customer, f"conv-{i}")) for i in range(3)]

    assert [amount(a.charged) for a in answers] == [Decimal("0.99")] * 3
    assert all(a.charged.currency_code == "USD" for a in answers)
    assert [a.ledger_sequence for a in answers] == [1, 2, 3]
    assert all(a.state == pb.OUTCOME_STATE_SETTLED for a in answers)
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert balance.period_outcomes == 3
    assert amount(balance.period_charged) == Decimal("2.97")


async def test_a_new_rate_card_version_prices_outcomes_from_its_effective_time_on(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Outcomes before T keep the old price; at and after T they take the new one."""
    now = datetime.now(UTC)
    change = now - timedelta(hours=1)
    await put_rate_card(
        stub, rate_card_id="std", price="0.99", effective_from=now - timedelta(days=30)
    )
    await put_rate_card(stub, rate_card_id="std", price="1.25", effective_from=change)
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="std"))

    before = await stub.RecordOutcome(
        record("acme", "before", occurred_at=change - timedelta(seconds=1))
    )
    at = await stub.RecordOutcome(record("acme", "at", occurred_at=change))
    after = await stub.RecordOutcome(record("acme", "after"))

    assert amount(before.unit_price) == Decimal("0.99")
    assert amount(at.unit_price) == Decimal("1.25")
    assert amount(after.charged) == Decimal("1.25")
    assert before.rate_card_version.ToDatetime(UTC) == now - timedelta(days=30)
    assert at.rate_card_version.ToDatetime(UTC) == change
