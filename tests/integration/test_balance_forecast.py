"""GetBalance's forecast: the month's end and each bucket's exhaustion at the last 28 days' pace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import amount, create_bucket, customer_on_rate_card, record

if TYPE_CHECKING:
    from conftest import MovableClock

Stub = rating_pb2_grpc.RatingServiceStub


def days_left_after_today(now: datetime) -> int:
    """Whole days of the month after ``now``'s day."""
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return (next_month - datetime(now.year, now.month, now.day, tzinfo=UTC)).days - 1


async def test_without_history_the_forecast_is_the_month_as_it_stands(stub: Stub) -> None:
    customer = await customer_on_rate_card(stub, price="0.99")
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1"))
    await stub.RecordOutcome(record(customer, "conv-2"))

    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))

    assert balance.forecast.projected_period_outcomes == balance.period_outcomes == 2
    assert balance.forecast.projected_period_charge == balance.period_charged
    assert not balance.buckets[0].HasField("projected_exhaustion")


async def test_one_outcome_a_day_for_28_days_projects_one_a_day_to_the_months_end(
    stub: Stub, clock: MovableClock
) -> None:
    """Each day ahead adds one outcome (today: the part not yet elapsed); a bucket of 5 runs
    out in 5 days; one that expires before it would run out has no exhaustion."""
    customer = await customer_on_rate_card(stub, price="0.50")
    for day in range(28):
        await stub.RecordOutcome(record(customer, f"conv-{day}"))
        clock.advance(timedelta(days=1))
    now = clock()
    await create_bucket(stub, customer, "five", 5, valid_until=now + timedelta(days=365))
    await create_bucket(stub, customer, "late", 1000, valid_until=now + timedelta(days=400))

    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))

    ahead = balance.forecast.projected_period_outcomes - balance.period_outcomes
    assert days_left_after_today(now) <= ahead <= days_left_after_today(now) + 1
    charge_ahead = amount(balance.forecast.projected_period_charge) - amount(balance.period_charged)
    assert Decimal("0.50") * days_left_after_today(now) <= charge_ahead
    assert charge_ahead <= Decimal("0.50") * (days_left_after_today(now) + 1)
    five, late = balance.buckets
    assert five.bucket_id == "five"
    runs_out = five.projected_exhaustion.ToDatetime(UTC)
    assert abs(runs_out - (now + timedelta(days=5))) < timedelta(minutes=1)
    assert late.bucket_id == "late"
    assert not late.HasField("projected_exhaustion")  # 1,000 days > its 400 days
