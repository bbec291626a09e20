"""The typed Python client (rating_client.RatingClient) against the real server process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from rating_client import (
    FailedPreconditionError,
    InvalidArgumentError,
    Money,
    NotFoundError,
    RatingClient,
)
from service_process import Launcher, ServiceProcess, health_status

CUSTOMER = "client-co"
BUCKET = "starter"
PRICE = Decimal("0.99")


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


@pytest.fixture
async def client(server: ServiceProcess) -> AsyncIterator[RatingClient]:
    async with RatingClient(server.address) as opened:
        yield opened


async def set_up_customer(client: RatingClient, bucket_units: int | None = 2) -> None:
    """A rate card at 0.99 USD per resolution, a customer on it and a bucket (unless None)."""
    await client.put_rate_card(
        rate_card_id="card-client", currency_code="USD", prices={"resolution": PRICE}
    )
    await client.put_customer(customer_id=CUSTOMER, rate_card_id="card-client")
    if bucket_units is None:
        return
    await client.create_bucket(
        customer_id=CUSTOMER, bucket_id=BUCKET, outcome_type="resolution", quantity=bucket_units
    )


async def record(client: RatingClient, outcome_id: str) -> tuple[int, Money]:
    recorded = await client.record_outcome(
        customer_id=CUSTOMER, outcome_id=outcome_id, outcome_type="resolution"
    )
    return recorded.units_from_buckets, recorded.charged


async def test_outcomes_draw_the_bucket_first_then_are_charged_the_card_price(
    client: RatingClient,
) -> None:
    """With two units prepaid, the third outcome costs exactly Decimal('0.99') USD."""
    await set_up_customer(client, bucket_units=2)

    takes = [await record(client, f"conv-{i}") for i in range(3)]

    assert takes == [(1, usd("0")), (1, usd("0")), (0, usd("0.99"))]


async def test_a_retried_outcome_replays_its_first_answer(client: RatingClient) -> None:
    """The same outcome_id sent again answers replayed=True with the same sequence."""
    await set_up_customer(client)
    first = await client.record_outcome(
        customer_id=CUSTOMER, outcome_id="conv-1", outcome_type="resolution"
    )

    again = await client.record_outcome(
        customer_id=CUSTOMER, outcome_id="conv-1", outcome_type="resolution"
    )

    assert (again.replayed, again.ledger_sequence) == (True, first.ledger_sequence)


async def test_a_quote_covers_what_the_bucket_holds_and_prices_the_rest(
    client: RatingClient,
) -> None:
    """Five more outcomes with two units left: two covered, three at 0.99, 2.97 in all."""
    await set_up_customer(client, bucket_units=2)

    quote = await client.quote_cost(customer_id=CUSTOMER, outcome_type="resolution", quantity=5)

    assert (quote.units_covered, quote.units_billable, quote.total) == (2, 3, usd("2.97"))


async def test_consume_draws_units_and_reports_what_is_left(client: RatingClient) -> None:
    """Drawing 3 of 5 units leaves 2 in the bucket."""
    await set_up_customer(client, bucket_units=5)

    consumed = await client.consume_bucket(
        customer_id=CUSTOMER, request_id="draw-1", outcome_type="resolution", quantity=3
    )

    assert (consumed.consumed, consumed.remaining_total) == (3, 2)


async def test_the_balance_shows_the_bucket_and_the_month_in_decimals(
    client: RatingClient,
) -> None:
    """After two covered outcomes and one charged: bucket empty, 3 outcomes, 0.99 charged."""
    await set_up_customer(client, bucket_units=2)
    for i in range(3):
        await record(client, f"conv-{i}")

    balance = await client.get_balance(customer_id=CUSTOMER)

    assert [(b.bucket_id, b.remaining) for b in balance.buckets] == [(BUCKET, 0)]
    assert (balance.period_outcomes, balance.period_charged) == (3, usd("0.99"))


async def test_the_ledger_lists_every_transaction_in_order_across_pages(
    client: RatingClient,
) -> None:
    """Pages of two walk the whole ledger: the bucket, then each outcome, gap-free."""
    await set_up_customer(client, bucket_units=2)
    for i in range(3):
        await record(client, f"conv-{i}")

    entries = [e async for e in client.iter_ledger_entries(customer_id=CUSTOMER, page_size=2)]

    assert [(e.sequence, e.kind, e.outcome_id, e.amount.amount) for e in entries] == [
        (1, "BUCKET_CREATED", None, Decimal(0)),
        (2, "OUTCOME_RATED", "conv-0", Decimal(0)),
        (3, "OUTCOME_RATED", "conv-1", Decimal(0)),
        (4, "OUTCOME_RATED", "conv-2", PRICE),
    ]


async def test_ledger_postings_are_decimals_that_sum_to_zero_per_asset(
    client: RatingClient,
) -> None:
    """Every transaction's legs, as Decimals, balance per asset."""
    await set_up_customer(client, bucket_units=1)
    for i in range(2):
        await record(client, f"conv-{i}")

    entries = [e async for e in client.iter_ledger_entries(customer_id=CUSTOMER)]

    sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        for posting in entry.postings:
            sums[(entry.sequence, posting.asset)] += posting.amount
    assert set(sums.values()) == {Decimal(0)}


async def test_reversing_a_charged_outcome_refunds_its_price(client: RatingClient) -> None:
    """A settled, charged outcome reversed gives back Decimal('0.99') USD."""
    await set_up_customer(client, bucket_units=None)
    await record(client, "conv-1")

    reversal = await client.reverse_outcome(
        customer_id=CUSTOMER, outcome_id="conv-1", reason="reopened"
    )

    assert (reversal.state, reversal.refunded) == ("REVERSED", usd("0.99"))


async def test_an_unknown_customer_raises_not_found_with_its_reason(client: RatingClient) -> None:
    """NotFoundError carries reason CUSTOMER_NOT_FOUND."""
    with pytest.raises(NotFoundError) as raised:
        await client.get_balance(customer_id="nobody")

    assert raised.value.reason == "CUSTOMER_NOT_FOUND"


async def test_a_malformed_outcome_id_raises_invalid_argument_naming_the_field(
    client: RatingClient,
) -> None:
    """InvalidArgumentError carries INVALID_FIELD and a violation for outcome_id."""
    await set_up_customer(client)

    with pytest.raises(InvalidArgumentError) as raised:
        await client.record_outcome(
            customer_id=CUSTOMER, outcome_id="not a valid id!", outcome_type="resolution"
        )

    assert raised.value.reason == "INVALID_FIELD"
    assert [f for f, _ in raised.value.field_violations] == ["outcome_id"]


async def test_an_outcome_type_without_a_price_raises_no_price(client: RatingClient) -> None:
    """FailedPreconditionError carries NO_PRICE when the rate card has no such type."""
    await set_up_customer(client)

    with pytest.raises(FailedPreconditionError) as raised:
        await client.record_outcome(
            customer_id=CUSTOMER, outcome_id="conv-1", outcome_type="escalation"
        )

    assert raised.value.reason == "NO_PRICE"


async def test_a_call_made_while_the_server_is_down_succeeds_once_it_is_up(
    launch: Launcher,
) -> None:
    """UNAVAILABLE is retried: the call outlives a restart and records the outcome once."""
    server = launch()
    async with RatingClient(server.address) as client:
        await set_up_customer(client)
    assert await asyncio.to_thread(server.terminate) == 0
    assert await asyncio.to_thread(health_status, server.address) is None

    async def start_soon() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)

    starter = asyncio.create_task(start_soon())
    async with RatingClient(
        server.address, timeout=60, max_attempts=1000, max_backoff=0.25
    ) as client:
        recorded = await client.record_outcome(
            customer_id=CUSTOMER, outcome_id="conv-late", outcome_type="resolution"
        )
        await starter
        entries = [e async for e in client.iter_ledger_entries(customer_id=CUSTOMER)]

    assert [e.sequence for e in entries if e.outcome_id == "conv-late"] == [
        recorded.ledger_sequence
    ]


async def test_the_client_voids_buckets_sets_spend_controls_and_watches_alerts(
    client: RatingClient,
) -> None:
    """The void expires the bucket's 2 units; a USD 1.00 limit lets one 0.99 outcome through
    and refuses the next with SPEND_LIMIT_REACHED; the 0.50 threshold's alert is watched."""
    await set_up_customer(client, bucket_units=2)
    voided = await client.void_bucket(customer_id=CUSTOMER, bucket_id=BUCKET, reason="refund")
    controls = await client.put_spend_controls(
        customer_id=CUSTOMER,
        request_id="controls-1",
        currency_code="USD",
        alert_thresholds=[Decimal("0.50")],
        hard_limit=Decimal("1.00"),
    )
    quote = await client.quote_cost(customer_id=CUSTOMER, outcome_type="resolution", quantity=1)

    assert (voided.units_expired, voided.bucket.status) == (2, "VOIDED")
    assert controls.hard_limit == usd("1")
    assert quote.limit_remaining == usd("1")
    assert await record(client, "conv-1") == (0, usd("0.99"))
    with pytest.raises(FailedPreconditionError) as refused:
        await record(client, "conv-2")
    assert refused.value.reason == "SPEND_LIMIT_REACHED"
    alerts = client.watch_alerts(customer_id=CUSTOMER)
    alert = await asyncio.wait_for(anext(aiter(alerts)), 30)
    assert (alert.alert_id, alert.threshold, alert.period_charged) == (1, usd("0.5"), usd("0.99"))
    await alerts.aclose()


async def test_explain_preview_and_simulate_answer_in_plain_values(client: RatingClient) -> None:
    """One covered and one charged outcome: the explanation names the bucket it drew, the
    invoice has one line with one billable at 0.99, the simulation at 1.98 doubles it."""
    await set_up_customer(client, bucket_units=1)
    await record(client, "conv-1")
    await record(client, "conv-2")

    explained = await client.explain_outcome(customer_id=CUSTOMER, outcome_id="conv-1")
    invoice = await client.preview_invoice(customer_id=CUSTOMER)
    simulated = await client.simulate_rate_card(
        prices={"resolution": Decimal("1.98")}, currency_code="USD", customer_ids=[CUSTOMER]
    )
    balance = await client.get_balance(customer_id=CUSTOMER)

    assert (explained.state, explained.bucket_use) == ("SETTLED", "DRAWN")
    assert [s.step for s in explained.history] == ["RECORDED", "SETTLED"]
    assert explained.credit_grant_ids == {BUCKET: ""}
    assert [(line.net, line.covered, line.billable) for line in invoice.lines] == [(2, 1, 1)]
    assert (invoice.total, invoice.credits) == (usd("0.99"), usd("0.99"))
    assert (simulated.actual_total, simulated.simulated_total) == (usd("0.99"), usd("1.98"))
    assert balance.projected_period_outcomes == 2  # no history yet: the month as it stands
