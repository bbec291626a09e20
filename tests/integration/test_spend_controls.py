"""Spend controls: a hard limit no burst can overshoot, and alerts delivered exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
import pytest
from google.type.money_pb2 import Money
from prometheus_client import REGISTRY
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from serving import serving
from support import (
    all_entries,
    amount,
    create_bucket,
    customer_on_rate_card,
    reason,
    record,
    usd,
    violated_fields,
)

from rating_service.config import Settings
from rating_service.ledger.engine import create_engines
from rating_service.ledger.verify import verify

if TYPE_CHECKING:
    from conftest import MovableClock

Stub = rating_pb2_grpc.RatingServiceStub


async def verified(database_url: str) -> list[object]:
    """``verify``'s problems with the ledger (empty: hash chain, zero sums, balances hold)."""
    engines = create_engines(database_url)
    try:
        return list((await verify(engines)).problems)
    finally:
        await engines.dispose()


def controls(
    customer: str,
    request_id: str,
    *,
    thresholds: tuple[str, ...] = (),
    hard_limit: str | None = None,
) -> pb.PutSpendControlsRequest:
    request = pb.PutSpendControlsRequest(
        customer_id=customer,
        request_id=request_id,
        alert_thresholds=[usd(t) for t in thresholds],
    )
    if hard_limit is not None:
        request.hard_limit.CopyFrom(usd(hard_limit))
    return request


# ---- the hard limit ------------------------------------------------------------------------


async def test_100_concurrent_outcomes_against_a_limit_that_allows_37_charge_exactly_37(
    stub: Stub, database_url: str
) -> None:
    """At USD 1.00 each under a USD 37.00 limit: 37 are charged, 63 are SPEND_LIMIT_REACHED
    and leave nothing in the ledger; the month holds exactly 37.00 and verify passes."""
    customer = await customer_on_rate_card(stub, price="1.00")
    await stub.PutSpendControls(controls(customer, "limit-37", hard_limit="37.00"))

    answers = await asyncio.gather(
        *(stub.RecordOutcome(record(customer, f"conv-{i}")) for i in range(100)),
        return_exceptions=True,
    )

    charged = [a for a in answers if isinstance(a, pb.RecordOutcomeResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(charged) == 37
    assert len(refused) == 63
    assert {(e.code(), reason(e)) for e in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "SPEND_LIMIT_REACHED")
    }
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert amount(balance.period_charged) == Decimal("37")
    assert balance.period_outcomes == 37
    assert len(await all_entries(stub, customer)) == 37
    assert await verified(database_url) == []


async def test_pending_charges_count_against_the_limit_and_each_batch_item_is_held_to_it(
    stub: Stub,
) -> None:
    """Two pending outcomes take USD 2.00 of a USD 3.00 limit: of a RecordOutcomes batch of
    three, the first is charged and the other two are refused on their own; so is one more
    pending outcome."""
    customer = await customer_on_rate_card(stub, price="1.00")
    await stub.PutSpendControls(controls(customer, "limit-3", hard_limit="3.00"))
    for i in range(2):
        await stub.RecordOutcome(record(customer, f"pending-{i}", state=pb.OUTCOME_STATE_PENDING))

    batch = await stub.RecordOutcomes(
        pb.RecordOutcomesRequest(requests=[record(customer, f"item-{i}") for i in range(3)])
    )

    assert [r.WhichOneof("result") for r in batch.results] == ["response", "error", "error"]
    assert {r.error.code for r in batch.results[1:]} == {
        grpc.StatusCode.FAILED_PRECONDITION.value[0]
    }
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RecordOutcome(record(customer, "one-more", state=pb.OUTCOME_STATE_PENDING))
    assert reason(raised.value) == "SPEND_LIMIT_REACHED"


async def test_an_outcome_a_bucket_covers_costs_nothing_and_is_never_refused(stub: Stub) -> None:
    """USD 1.00 already charged, then a limit of USD 0.50 (already passed): every billable
    outcome is refused, yet the bucket's 5 units are all drawn."""
    customer = await customer_on_rate_card(stub, price="1.00")
    await stub.RecordOutcome(record(customer, "before-the-limit"))
    await stub.PutSpendControls(controls(customer, "below-spend", hard_limit="0.50"))
    await create_bucket(stub, customer, "prepaid", 5)

    covered = [await stub.RecordOutcome(record(customer, f"conv-{i}")) for i in range(5)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RecordOutcome(record(customer, "billable"))

    assert [c.units_from_buckets for c in covered] == [1] * 5
    assert reason(raised.value) == "SPEND_LIMIT_REACHED"


async def test_a_quote_says_what_the_limit_leaves_and_nothing_without_a_limit(stub: Stub) -> None:
    """USD 10.00 limit, USD 3.00 charged: limit_remaining is USD 7.00; absent before controls."""
    customer = await customer_on_rate_card(stub, price="1.00")
    quote = pb.QuoteCostRequest(customer_id=customer, outcome_type="resolution", quantity=1)
    assert not (await stub.QuoteCost(quote)).HasField("limit_remaining")

    await stub.PutSpendControls(controls(customer, "limit-10", hard_limit="10.00"))
    for i in range(3):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))

    answer = await stub.QuoteCost(quote)
    assert answer.limit_remaining.currency_code == "USD"
    assert amount(answer.limit_remaining) == Decimal("7")


async def test_put_spend_controls_is_idempotent_on_its_request_id(stub: Stub) -> None:
    """A retry is a replay; the same request id with other controls is IDEMPOTENCY_KEY_REUSED;
    a new request id replaces the controls (the limit is lifted)."""
    customer = await customer_on_rate_card(stub, price="1.00")
    first = await stub.PutSpendControls(
        controls(customer, "put-1", thresholds=("5.00", "2.00"), hard_limit="1.00")
    )
    retry = await stub.PutSpendControls(
        controls(customer, "put-1", thresholds=("5.00", "2.00"), hard_limit="1.00")
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PutSpendControls(controls(customer, "put-1", hard_limit="2.00"))

    assert not first.replayed
    assert retry.replayed
    assert [amount(t) for t in first.spend_controls.alert_thresholds] == [2, 5]
    assert retry.spend_controls == first.spend_controls
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(raised.value) == "IDEMPOTENCY_KEY_REUSED"

    await stub.RecordOutcome(record(customer, "within"))
    await stub.PutSpendControls(controls(customer, "put-2"))
    await stub.RecordOutcome(record(customer, "after-the-limit-was-lifted"))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (controls("acme", "r", thresholds=("0",)), "alert_thresholds[0]"),
        (controls("acme", "r", thresholds=("1.00", "1.00")), "alert_thresholds[1]"),
        (controls("acme", "r", hard_limit="-1.00"), "hard_limit"),
        (
            pb.PutSpendControlsRequest(customer_id="acme", request_id="r", hard_limit=Money()),
            "hard_limit.currency_code",
        ),
        (
            pb.PutSpendControlsRequest(
                customer_id="acme",
                request_id="r",
                alert_thresholds=[usd("1")],
                hard_limit=Money(currency_code="EUR", units=5),
            ),
            "hard_limit.currency_code",
        ),
        (controls("acme", ""), "request_id"),
    ],
)
async def test_bad_controls_are_invalid_argument_naming_the_field(
    stub: Stub, request_: pb.PutSpendControlsRequest, field: str
) -> None:
    await customer_on_rate_card(stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PutSpendControls(request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(raised.value) == "INVALID_FIELD"
    assert field in violated_fields(raised.value)


async def test_controls_in_another_currency_than_the_rate_card_are_refused(stub: Stub) -> None:
    customer = await customer_on_rate_card(stub)
    request = pb.PutSpendControlsRequest(customer_id=customer, request_id="eur")
    request.hard_limit.CopyFrom(Money(currency_code="EUR", units=5))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PutSpendControls(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_customers_are_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PutSpendControls(controls("nobody", "r", hard_limit="1.00"))
    assert reason(raised.value) == "CUSTOMER_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as watched:
        async for _ in stub.WatchAlerts(pb.WatchAlertsRequest(customer_id="nobody")):
            pass
    assert reason(watched.value) == "CUSTOMER_NOT_FOUND"


# ---- alerts --------------------------------------------------------------------------------


class Watch:
    """One WatchAlerts stream, read one alert at a time."""

    def __init__(self, stub: Stub, after: int = 0, customer_id: str = "") -> None:
        self.call = stub.WatchAlerts(
            pb.WatchAlertsRequest(customer_id=customer_id, after_alert_id=after)
        )
        self._stream: AsyncIterator[pb.WatchAlertsResponse] = self.call.__aiter__()

    async def next(self) -> pb.WatchAlertsResponse:
        return await asyncio.wait_for(self._stream.__anext__(), 30)

    def close(self) -> None:
        self.call.cancel()


def described(alert: pb.WatchAlertsResponse) -> tuple[int, str, Decimal, Decimal]:
    return (
        alert.alert_id,
        alert.customer_id,
        amount(alert.threshold),
        amount(alert.period_charged),
    )


async def test_an_alert_crossed_unwatched_is_delivered_once_on_reconnect_across_restarts(
    database_url: str,
) -> None:
    """USD 2.00 is crossed while no server watches; after a restart a watch from 0 delivers it,
    then the next threshold's alert live as id 2; a watch after 2 and a watch from 0 on a
    restarted server deliver nothing more than 1 and 2 (the next thing seen is alert 3)."""
    settings = Settings(database_url=database_url, listen="127.0.0.1:0")
    async with serving(settings) as (_, channel):
        stub = Stub(channel)
        customer = await customer_on_rate_card(stub, price="1.00")
        await stub.PutSpendControls(
            controls(customer, "alerts", thresholds=("2.00", "5.00", "8.00"))
        )
        for i in range(3):
            await stub.RecordOutcome(record(customer, f"conv-{i}"))

    async with serving(settings) as (_, channel):
        stub = Stub(channel)
        watch = Watch(stub)
        first = await watch.next()
        assert described(first) == (1, customer, Decimal("2"), Decimal("2"))
        assert first.period_start.ToDatetime(UTC) == datetime.now(UTC).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        for i in range(3, 5):
            await stub.RecordOutcome(record(customer, f"conv-{i}"))
        assert described(await watch.next()) == (2, customer, Decimal("5"), Decimal("5"))
        watch.close()

    async with serving(settings) as (_, channel):
        stub = Stub(channel)
        from_start, resumed = Watch(stub), Watch(stub, after=2, customer_id=customer)
        assert [(await from_start.next()).alert_id for _ in range(2)] == [1, 2]
        for i in range(5, 8):
            await stub.RecordOutcome(record(customer, f"conv-{i}"))
        assert described(await resumed.next()) == (3, customer, Decimal("8"), Decimal("8"))
        assert (await from_start.next()).alert_id == 3
        from_start.close()
        resumed.close()
    assert await verified(database_url) == []


async def test_an_alert_fires_once_per_threshold_and_month(
    stub: Stub, clock: MovableClock, database_url: str
) -> None:
    """Crossed, fallen back under by a reversal and crossed again: still one alert. Next
    month the same threshold alerts again, and a charge crossing two thresholds raises both."""
    customer = await customer_on_rate_card(stub, price="1.00")
    await stub.PutSpendControls(controls(customer, "alerts", thresholds=("2.00", "3.00")))
    watch = Watch(stub, customer_id=customer)
    for i in range(2):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))
    assert (await watch.next()).alert_id == 1
    await stub.ReverseOutcome(pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="conv-1"))
    await stub.RecordOutcome(record(customer, "conv-again"))
    await stub.RecordOutcome(record(customer, "conv-third"))
    assert described(await watch.next()) == (2, customer, Decimal("3"), Decimal("3"))

    clock.advance(timedelta(days=32))
    await stub.RecordOutcomes(
        pb.RecordOutcomesRequest(requests=[record(customer, f"next-{i}") for i in range(3)])
    )
    next_month = [await watch.next() for _ in range(2)]
    assert [described(a) for a in next_month] == [
        (3, customer, Decimal("2"), Decimal("2")),
        (4, customer, Decimal("3"), Decimal("3")),
    ]
    watch.close()
    assert await verified(database_url) == []


async def test_a_pending_outcome_alerts_when_it_settles_and_alerts_are_counted(
    stub: Stub,
) -> None:
    """Pending charges are not yet charged: the alert comes with the confirmation, and the
    rating_spend_alerts counter moves by one."""
    customer = await customer_on_rate_card(stub, price="1.00")
    await stub.PutSpendControls(controls(customer, "alerts", thresholds=("1.00",)))
    counted = REGISTRY.get_sample_value("rating_spend_alerts_total") or 0.0
    await stub.RecordOutcome(record(customer, "conv-1", state=pb.OUTCOME_STATE_PENDING))
    watch = Watch(stub, customer_id=customer)

    await stub.ConfirmOutcome(pb.ConfirmOutcomeRequest(customer_id=customer, outcome_id="conv-1"))

    assert described(await watch.next()) == (1, customer, Decimal("1"), Decimal("1"))
    assert REGISTRY.get_sample_value("rating_spend_alerts_total") == counted + 1
    watch.close()
