"""Customers and rate cards: PutCustomer creates then updates; rate-card versions are appended.

PutCustomer is idempotent on customer_id (a write that changes nothing is a
replay); PutRateCard on (rate_card_id, effective_from). A first version
without effective_from is in force since the beginning of time; a later one
from now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import pytest
from google.type import money_pb2
from rating_client import decimal_to_money
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import amount, put_rate_card, record, ts, usd

Stub = rating_pb2_grpc.RatingServiceStub


class Clock(Protocol):
    """The ``clock`` fixture: the server's now, which a test can move forward."""

    def __call__(self) -> datetime: ...

    def advance(self, delta: timedelta) -> None: ...


def eur(text: str) -> money_pb2.Money:
    return decimal_to_money(Decimal(text), "EUR")


async def price_at(
    stub: Stub, customer: str, at: datetime | None = None
) -> tuple[Decimal, datetime]:
    """The unit price QuoteCost gives at ``at`` and the effective_from of its version."""
    request = pb.QuoteCostRequest(customer_id=customer, outcome_type="resolution", quantity=1)
    if at is not None:
        request.at.CopyFrom(ts(at))
    answer = await stub.QuoteCost(request)
    return amount(answer.unit_price), answer.rate_card_version.ToDatetime(UTC)


# ---- PutCustomer --------------------------------------------------------------------------


async def test_put_customer_creates_a_customer(stub: Stub) -> None:
    """The first put stores the customer as sent, not as a replay, created = updated."""
    answer = await stub.PutCustomer(
        pb.PutCustomerRequest(customer_id="acme", stripe_customer_id="cus_1", rate_card_id="std")
    )

    assert not answer.replayed
    assert (
        answer.customer.customer_id,
        answer.customer.stripe_customer_id,
        answer.customer.rate_card_id,
    ) == ("acme", "cus_1", "std")
    assert answer.customer.create_time == answer.customer.update_time


async def test_put_customer_again_with_changes_updates_it_and_keeps_its_creation_time(
    stub: Stub, clock: Clock
) -> None:
    """A later put with another Stripe id and rate card: last write wins, create_time stays."""
    first = await stub.PutCustomer(
        pb.PutCustomerRequest(customer_id="acme", stripe_customer_id="cus_1", rate_card_id="std")
    )
    clock.advance(timedelta(hours=1))

    second = await stub.PutCustomer(
        pb.PutCustomerRequest(customer_id="acme", stripe_customer_id="cus_2", rate_card_id="pro")
    )

    assert not second.replayed
    assert (second.customer.stripe_customer_id, second.customer.rate_card_id) == ("cus_2", "pro")
    assert second.customer.create_time == first.customer.create_time
    assert second.customer.update_time.ToDatetime(UTC) > first.customer.update_time.ToDatetime(UTC)


async def test_put_customer_again_unchanged_is_a_replay_that_changes_nothing(
    stub: Stub, clock: Clock
) -> None:
    """The same put an hour later: replayed, update_time unchanged."""
    request = pb.PutCustomerRequest(
        customer_id="acme", stripe_customer_id="cus_1", rate_card_id="std"
    )
    first = await stub.PutCustomer(request)
    clock.advance(timedelta(hours=1))

    again = await stub.PutCustomer(request)

    assert again.replayed
    assert again.customer == first.customer


async def test_a_customer_moved_to_another_rate_card_is_priced_by_it(stub: Stub) -> None:
    """After PutCustomer names the pro card, new outcomes cost the pro price."""
    await put_rate_card(stub, rate_card_id="std", price="0.99")
    await put_rate_card(stub, rate_card_id="pro", price="1.49")
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="std"))
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="pro"))

    answer = await stub.RecordOutcome(record("acme", "conv-1"))

    assert amount(answer.charged) == Decimal("1.49")


async def test_a_customer_may_name_a_rate_card_before_it_is_put(stub: Stub) -> None:
    """The customer comes first; once the card exists its outcomes are priced by it."""
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="later"))
    await put_rate_card(stub, rate_card_id="later", price="0.75")

    answer = await stub.RecordOutcome(record("acme", "conv-1"))

    assert amount(answer.charged) == Decimal("0.75")


# ---- PutRateCard --------------------------------------------------------------------------


async def test_put_rate_card_appends_versions_each_in_force_from_its_effective_from(
    stub: Stub, clock: Clock
) -> None:
    """Three versions: each price applies from its effective_from (inclusive) to the next."""
    now = clock()
    first, second, third = (
        now - timedelta(days=10),
        now - timedelta(days=5),
        now + timedelta(days=5),
    )
    await put_rate_card(stub, rate_card_id="std", price="0.99", effective_from=first)
    await put_rate_card(stub, rate_card_id="std", price="1.25", effective_from=second)
    await put_rate_card(stub, rate_card_id="std", price="1.50", effective_from=third)
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="std"))

    prices = [
        await price_at(stub, "acme", at)
        for at in (first, second - timedelta(microseconds=1), second, now, third)
    ]

    assert prices == [
        (Decimal("0.99"), first),
        (Decimal("0.99"), first),
        (Decimal("1.25"), second),
        (Decimal("1.25"), second),
        (Decimal("1.50"), third),
    ]


async def test_put_rate_card_again_with_the_same_effective_from_and_prices_is_a_replay(
    stub: Stub, clock: Clock
) -> None:
    """The second put answers the stored version, marked as a replay."""
    effective_from = clock() - timedelta(days=1)
    first = await put_rate_card(stub, rate_card_id="std", effective_from=effective_from)

    again = await put_rate_card(stub, rate_card_id="std", effective_from=effective_from)

    assert not first.replayed
    assert again.replayed
    assert again.version == first.version


async def test_a_first_version_without_effective_from_is_in_force_for_past_outcomes(
    stub: Stub,
) -> None:
    """An outcome of 2020 on a card put today without effective_from is priced by it."""
    put = await put_rate_card(stub, rate_card_id="std", price="0.99")
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="std"))

    answer = await stub.RecordOutcome(
        record("acme", "conv-1", occurred_at=datetime(2020, 1, 1, tzinfo=UTC))
    )

    assert amount(answer.charged) == Decimal("0.99")
    assert answer.rate_card_version == put.version.effective_from
    assert put.version.effective_from.ToDatetime(UTC) <= datetime(2020, 1, 1, tzinfo=UTC)


async def test_a_later_version_without_effective_from_is_in_force_from_now(
    stub: Stub, clock: Clock
) -> None:
    """The new price applies from the time of the put; earlier outcomes keep the old one."""
    await put_rate_card(stub, rate_card_id="std", price="0.99")
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="std"))
    before = clock()

    put = await put_rate_card(stub, rate_card_id="std", price="1.25")

    assert not put.replayed
    assert before <= put.version.effective_from.ToDatetime(UTC) <= clock()
    assert (await price_at(stub, "acme", before - timedelta(seconds=1)))[0] == Decimal("0.99")
    assert (await price_at(stub, "acme"))[0] == Decimal("1.25")


async def test_a_later_version_without_effective_from_identical_to_the_one_in_force_is_a_replay(
    stub: Stub,
) -> None:
    """Re-putting the same prices without effective_from appends nothing."""
    first = await put_rate_card(stub, rate_card_id="std", price="0.99")

    again = await put_rate_card(stub, rate_card_id="std", price="0.99")

    assert again.replayed
    assert again.version == first.version


async def test_a_rate_card_version_lists_its_prices_by_outcome_type_with_their_windows(
    stub: Stub,
) -> None:
    """Prices come back ordered by outcome type; an absent settlement_window is 24 hours."""
    answer = await stub.PutRateCard(
        pb.PutRateCardRequest(
            rate_card_id="std",
            currency_code="USD",
            prices=[
                pb.Price(outcome_type="resolution", unit_price=usd("0.99")),
                pb.Price(outcome_type="escalation", unit_price=usd("2.50")),
            ],
        )
    )

    assert [
        (p.outcome_type, amount(p.unit_price), p.settlement_window.ToTimedelta())
        for p in answer.version.prices
    ] == [
        ("escalation", Decimal("2.50"), timedelta(hours=24)),
        ("resolution", Decimal("0.99"), timedelta(hours=24)),
    ]


async def test_a_price_without_a_currency_takes_the_rate_cards(stub: Stub) -> None:
    """A unit_price with an empty currency_code is in the card's currency (EUR)."""
    answer = await stub.PutRateCard(
        pb.PutRateCardRequest(
            rate_card_id="euro",
            currency_code="EUR",
            prices=[
                pb.Price(
                    outcome_type="resolution",
                    unit_price=money_pb2.Money(units=0, nanos=890_000_000),
                )
            ],
        )
    )

    assert answer.version.prices[0].unit_price == eur("0.89")


# ---- GetBalance of a new customer -------------------------------------------------------------


@pytest.mark.parametrize(
    "starts",
    [
        pytest.param(timedelta(0), id="card-in-force"),
        pytest.param(timedelta(days=7), id="card-starting-next-week"),
    ],
)
async def test_get_balance_of_a_new_customer_is_all_zero_in_its_rate_card_currency(
    stub: Stub, clock: Clock, starts: timedelta
) -> None:
    """No bucket, no outcome, no charge, sequence 0; money in the card's currency (EUR)."""
    request = pb.PutRateCardRequest(
        rate_card_id="euro",
        currency_code="EUR",
        prices=[pb.Price(outcome_type="resolution", unit_price=eur("0.89"))],
    )
    if starts:
        request.effective_from.CopyFrom(ts(clock() + starts))
    await stub.PutRateCard(request)
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id="acme", rate_card_id="euro"))

    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id="acme"))

    zero = money_pb2.Money(currency_code="EUR")
    assert list(balance.buckets) == []
    assert (balance.period_outcomes, balance.pending_outcomes, balance.ledger_sequence) == (0, 0, 0)
    assert (balance.period_charged, balance.pending_charge) == (zero, zero)
