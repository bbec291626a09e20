"""SimulateRateCard: a month re-priced under draft prices, bucket draws kept, nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import (
    all_entries,
    amount,
    create_bucket,
    put_rate_card,
    reason,
    record,
    ts,
    usd,
    violated_fields,
)

if TYPE_CHECKING:
    from conftest import MovableClock

Stub = rating_pb2_grpc.RatingServiceStub


def draft(price: str, **selector: object) -> pb.SimulateRateCardRequest:
    request = pb.SimulateRateCardRequest(
        currency_code="USD", prices=[pb.Price(outcome_type="resolution", unit_price=usd(price))]
    )
    if "rate_card_id" in selector:
        request.rate_card_id = str(selector["rate_card_id"])
    if "customers" in selector:
        request.customer_list.customer_ids.extend(selector["customers"])  # type: ignore[arg-type]
    return request


async def month_on_a_shared_card(stub: Stub) -> dict[str, Decimal]:
    """Three customers on `shared` at 0.99: outcomes, a covered one, a reversal; their charge."""
    await put_rate_card(stub, rate_card_id="shared", price="0.99")
    counts = {"alpha": 3, "beta": 5, "gamma": 0}
    for customer, n in counts.items():
        await stub.PutCustomer(pb.PutCustomerRequest(customer_id=customer, rate_card_id="shared"))
        for i in range(n):
            await stub.RecordOutcome(record(customer, f"conv-{i}"))
    await create_bucket(stub, "beta", "annual", 1)
    await stub.RecordOutcome(record("beta", "covered"))
    await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id="beta", outcome_id="conv-0", reason="reopened")
    )
    charged = {}
    for customer in counts:
        balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
        charged[customer] = amount(balance.period_charged)
    return charged


def by_customer(answer: pb.SimulateRateCardResponse) -> dict[str, tuple[Decimal, Decimal]]:
    return {c.customer_id: (amount(c.actual), amount(c.simulated)) for c in answer.customers}


async def test_simulating_the_actual_prices_changes_nothing(stub: Stub) -> None:
    """Every customer's actual is what GetBalance charged; simulated equals it; differences 0."""
    charged = await month_on_a_shared_card(stub)

    answer = await stub.SimulateRateCard(draft("0.99", rate_card_id="shared"))

    assert by_customer(answer) == {c: (v, v) for c, v in charged.items()}
    assert charged == {"alpha": Decimal("2.97"), "beta": Decimal("3.96"), "gamma": 0}
    assert [amount(c.difference) for c in answer.customers] == [0, 0, 0]
    assert amount(answer.actual_total) == amount(answer.simulated_total) == Decimal("6.93")
    assert amount(answer.difference_total) == 0


async def test_doubled_prices_exactly_double_the_billable_amount(stub: Stub) -> None:
    """Bucket-covered outcomes stay covered; the billable count is the same, at twice the price."""
    charged = await month_on_a_shared_card(stub)

    answer = await stub.SimulateRateCard(draft("1.98", customers=["beta", "alpha"]))

    assert by_customer(answer) == {c: (charged[c], 2 * charged[c]) for c in ("alpha", "beta")}
    assert [c.customer_id for c in answer.customers] == ["alpha", "beta"]
    assert [c.billable_outcomes for c in answer.customers] == [3, 4]
    assert amount(answer.simulated_total) == 2 * amount(answer.actual_total) == Decimal("13.86")
    assert amount(answer.difference_total) == Decimal("6.93")


async def test_a_simulation_writes_nothing(stub: Stub) -> None:
    await month_on_a_shared_card(stub)
    before = {c: await all_entries(stub, c) for c in ("alpha", "beta")}

    await stub.SimulateRateCard(draft("5.00", rate_card_id="shared"))

    assert {c: await all_entries(stub, c) for c in ("alpha", "beta")} == before
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id="alpha"))
    assert amount(balance.period_charged) == Decimal("2.97")


async def test_a_draft_that_does_not_price_a_type_keeps_its_actual_price(stub: Stub) -> None:
    charged = await month_on_a_shared_card(stub)
    request = draft("0.50", customers=["alpha"])
    request.prices[0].outcome_type = "escalation"

    answer = await stub.SimulateRateCard(request)

    assert by_customer(answer) == {"alpha": (charged["alpha"], charged["alpha"])}


async def test_another_month_is_re_priced_from_its_own_counts(
    stub: Stub, clock: MovableClock
) -> None:
    """Last month re-priced after the clock moved on; this month has nothing yet."""
    await month_on_a_shared_card(stub)
    now = clock()
    last_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    clock.advance(timedelta(days=32))
    request = draft("1.98", rate_card_id="shared")

    this_month = await stub.SimulateRateCard(request)
    request.period_start.CopyFrom(ts(last_month))
    earlier = await stub.SimulateRateCard(request)

    assert amount(this_month.actual_total) == 0
    assert amount(earlier.actual_total) == Decimal("6.93")
    assert amount(earlier.simulated_total) == Decimal("13.86")


async def test_an_unknown_customer_in_the_list_is_customer_not_found(stub: Stub) -> None:
    await month_on_a_shared_card(stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SimulateRateCard(draft("0.99", customers=["alpha", "nobody"]))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "CUSTOMER_NOT_FOUND"


async def test_customers_billed_in_another_currency_are_refused_naming_currency_code(
    stub: Stub,
) -> None:
    await month_on_a_shared_card(stub)
    request = draft("0.99", rate_card_id="shared")
    request.currency_code = "EUR"
    request.prices[0].unit_price.currency_code = "EUR"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SimulateRateCard(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(raised.value) == ["currency_code"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.ClearField("customers"), "rate_card_id"),
        (lambda r: setattr(r, "rate_card_id", "bad id"), "rate_card_id"),
        (
            lambda r: r.customer_list.customer_ids.extend(["a", "a"]),
            "customer_list.customer_ids[1]",
        ),
        (lambda r: r.ClearField("prices"), "prices"),
        (lambda r: setattr(r, "currency_code", "usd"), "currency_code"),
        (lambda r: r.prices[0].unit_price.CopyFrom(usd("-1")), "prices[0].unit_price"),
        (lambda r: r.prices.append(r.prices[0]), "prices[1].outcome_type"),
        (lambda r: r.period_start.CopyFrom(ts(datetime(2026, 11, 2, tzinfo=UTC))), "period_start"),
    ],
)
async def test_a_bad_draft_is_refused_naming_the_field(
    stub: Stub, change: object, field: str
) -> None:
    request = draft("0.99", rate_card_id="shared")
    if field.startswith("customer_list"):
        request = draft("0.99", customers=[])
    change(request)  # type: ignore[operator]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SimulateRateCard(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(raised.value) == "INVALID_FIELD"
    assert field in violated_fields(raised.value)
