"""Usage that waited more than 35 days for a Stripe customer id: where each side counts it.

Stripe refuses meter events stamped more than 35 days ago, so usage whose
customer got its Stripe id too late is stamped at the oldest time Stripe takes
(``domain.usage.stripe_timestamp``), which falls in a later month. Then the
ledger shows the usage in its own month and Stripe in that later one (its
later invoice bills it): ``reconcile`` expects it there, lists it as *late*
(not drift), and finds no difference in units or money.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import reporter_support as rs
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service
from rating_service.domain.postings import period_of
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import format_table, reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import StripeTestServer

SETTINGS = ReporterSettings(window=timedelta(seconds=1))
LATE, LATE_ID = "late-co", "cus_late"
PROMPT, PROMPT_ID = "prompt-co", "cus_prompt"
OUTCOMES = 12


def next_month(at: datetime) -> datetime:
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


@pytest.fixture
async def stripe_on_the_clock(
    clock: rs.MovableClock,
) -> AsyncIterator[tuple[StripeTestServer, StripeGateway]]:
    """The Stripe test server and a gateway on the service's clock, which the test moves."""
    async with StripeTestServer(clock=lambda: clock().timestamp()) as server:
        gateway = StripeGateway(
            rs.API_KEY, api_base=server.base_url, meter_events_base=server.base_url, clock=clock
        )
        try:
            yield server, gateway
        finally:
            await gateway.close()


async def test_usage_sent_after_35_days_is_in_a_later_month_in_stripe_and_reconcile_says_so(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: rs.MovableClock,
    stripe_on_the_clock: tuple[StripeTestServer, StripeGateway],
) -> None:
    server, gateway = stripe_on_the_clock
    m1 = next_month(clock())
    m2, m3 = next_month(m1), next_month(next_month(m1))
    clock.advance(m1 + timedelta(days=4) - clock())
    await rs.put_card(stub, "standard", "0.99")
    server.add_customer(PROMPT_ID)
    await rs.put_customer(stub, PROMPT, PROMPT_ID, "standard")
    await rs.put_customer(stub, LATE, "", "standard")
    await ensure_meters(service.store, gateway, SETTINGS, create=True)
    reporter = Reporter(service.store, gateway, SETTINGS, clock)
    await rs.record_all(
        stub, [rs.outcome(c, f"{c}-{i}") for i in range(OUTCOMES) for c in (LATE, PROMPT)]
    )
    await rs.drain(reporter, service.store)

    clock.advance(m3 + timedelta(days=9) - clock())  # 35 days back is early in month 2
    server.add_customer(LATE_ID)
    await rs.put_customer(stub, LATE, LATE_ID, "standard")
    await rs.drain(reporter, service.store)
    result = await reconcile(service.store, gateway, SETTINGS, clock())

    late_months = {
        period_of(datetime.fromtimestamp(e.timestamp, UTC))
        for e in server.state.events
        if e.customer == LATE_ID
    }
    prompt_months = {
        period_of(datetime.fromtimestamp(e.timestamp, UTC))
        for e in server.state.events
        if e.customer == PROMPT_ID
    }
    assert server.state.meter_totals(LATE_ID, rs.EVENT_NAME) == OUTCOMES
    assert (late_months, prompt_months) == ({period_of(m2)}, {period_of(m1)})
    assert result.differences == (), format_table(result)
    (late,) = result.notices
    assert (late.customer_id, late.kind, late.subject) == (
        LATE,
        "late",
        f"{rs.EVENT_NAME} {period_of(m1)}",
    )
    assert (late.ledger, late.stripe) == (
        f"{OUTCOMES} in {period_of(m1)}",
        f"{OUTCOMES} in {period_of(m2)}",
    )
    table = format_table(result)
    assert "no differences; 1 late (not drift)" in table
    assert table.splitlines()[1].split()[:2] == [LATE, "late"]
    # Customers and months, in units and money: late-co's month 1 and month 2, prompt-co's 1.
    assert result.months_checked == 3
