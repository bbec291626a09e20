"""PreviewInvoice: a month's bill per outcome type and price, equal to the ledger's sums."""

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
    violated_fields,
)

if TYPE_CHECKING:
    from conftest import MovableClock

Stub = rating_pb2_grpc.RatingServiceStub
PENDING = pb.OUTCOME_STATE_PENDING


def month_of(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


async def preview(
    stub: Stub, customer_id: str, period_start: datetime | None = None
) -> pb.PreviewInvoiceResponse:
    request = pb.PreviewInvoiceRequest(customer_id=customer_id)
    if period_start is not None:
        request.period_start.CopyFrom(ts(period_start))
    answer: pb.PreviewInvoiceResponse = await stub.PreviewInvoice(request)
    return answer


async def ledger_month(stub: Stub, customer_id: str, month: str) -> tuple[int, Decimal]:
    """The month's settled outcomes and charge, summed from the ledger's own postings."""
    outcomes, charged = 0, Decimal(0)
    for entry in await all_entries(stub, customer_id):
        for p in entry.postings:
            if p.account == f"usage:{month}:outcomes":
                outcomes += int(p.amount)
            elif p.account == f"usage:{month}:charged":
                charged += Decimal(p.amount)
    return outcomes, charged


def lines(answer: pb.PreviewInvoiceResponse) -> list[tuple[str, Decimal, int, int, int, int]]:
    return [
        (
            line.outcome_type,
            amount(line.unit_price),
            line.settled,
            line.reversed,
            line.covered,
            line.billable,
        )
        for line in answer.lines
    ]


async def customer_with_a_price_change(stub: Stub, now: datetime) -> tuple[str, datetime]:
    """acme on a card at 0.99 until an hour ago and 1.49 since; returns the change's time."""
    change = now.replace(microsecond=0) - timedelta(hours=1)
    await put_rate_card(
        stub, rate_card_id="std", price="0.99", effective_from=change - timedelta(days=400)
    )
    await put_rate_card(stub, rate_card_id="std", price="1.49", effective_from=change)
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="std"))
    return "acme", change


async def test_an_invoice_preview_equals_the_ledgers_month_across_a_price_change_and_a_reversal(
    stub: Stub, clock: MovableClock
) -> None:
    """Two lines (one per price), a bucket-covered outcome as credit, a reversal netted; the
    total and the net equal the month's postings and GetBalance."""
    now = clock()
    customer, change = await customer_with_a_price_change(stub, now)
    await create_bucket(stub, customer, "annual", 1, valid_from=change - timedelta(days=1))
    before, after = change - timedelta(minutes=30), change + timedelta(minutes=30)
    for i in range(3):  # the first is covered by the bucket's one unit
        await stub.RecordOutcome(record(customer, f"old-{i}", occurred_at=before))
    for i in range(4):
        await stub.RecordOutcome(record(customer, f"new-{i}", occurred_at=after))
    await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="new-0", reason="reopened")
    )
    await stub.RecordOutcome(record(customer, "pending-1", state=PENDING, occurred_at=after))

    answer = await preview(stub, customer)

    assert answer.period_start.ToDatetime(UTC) == month_of(clock())
    assert lines(answer) == [
        ("resolution", Decimal("0.99"), 3, 0, 1, 2),
        ("resolution", Decimal("1.49"), 4, 1, 0, 3),
    ]
    assert [amount(line.amount) for line in answer.lines] == [Decimal("1.98"), Decimal("4.47")]
    assert amount(answer.credits) == Decimal("0.99")
    assert amount(answer.total) == Decimal("6.45")
    assert (answer.pending_outcomes, amount(answer.pending_charge)) == (1, Decimal("1.49"))
    month = answer.period_start.ToDatetime(UTC).strftime("%Y-%m")
    assert await ledger_month(stub, customer, month) == (
        sum(line.net for line in answer.lines),
        amount(answer.total),
    )
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert (balance.period_outcomes, amount(balance.period_charged)) == (6, Decimal("6.45"))


async def test_a_reversal_in_a_later_month_counts_in_that_month_at_the_outcomes_price(
    stub: Stub, clock: MovableClock
) -> None:
    """Last month keeps its bill; this month's line has the reversal alone, net -1, -0.99."""
    customer, change = await customer_with_a_price_change(stub, clock())
    await stub.RecordOutcome(record(customer, "old-1", occurred_at=change - timedelta(minutes=1)))
    first_month = month_of(clock())
    clock.advance(timedelta(days=32))
    await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="old-1", reason="reopened")
    )

    earlier = await preview(stub, customer, first_month)
    later = await preview(stub, customer)

    assert lines(earlier) == [("resolution", Decimal("0.99"), 1, 0, 0, 1)]
    assert amount(earlier.total) == Decimal("0.99")
    assert earlier.pending_outcomes == 0
    assert lines(later) == [("resolution", Decimal("0.99"), 0, 1, 0, -1)]
    assert amount(later.total) == Decimal("-0.99")
    month = later.period_start.ToDatetime(UTC).strftime("%Y-%m")
    assert await ledger_month(stub, customer, month) == (-1, Decimal("-0.99"))


async def test_a_month_without_usage_is_an_empty_bill_in_the_rate_cards_currency(
    stub: Stub, clock: MovableClock
) -> None:
    customer, _ = await customer_with_a_price_change(stub, clock())

    answer = await preview(stub, customer, month_of(month_of(clock()) - timedelta(days=300)))

    assert list(answer.lines) == []
    assert (answer.total.currency_code, amount(answer.total)) == ("USD", 0)
    assert list(answer.meters) == []


async def test_a_period_start_that_does_not_open_a_month_is_refused_naming_it(
    stub: Stub, clock: MovableClock
) -> None:
    customer, _ = await customer_with_a_price_change(stub, clock())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await preview(stub, customer, month_of(clock()) + timedelta(hours=1))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(raised.value) == ["period_start"]


async def test_previewing_an_unknown_customers_invoice_is_customer_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await preview(stub, "nobody")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "CUSTOMER_NOT_FOUND"
