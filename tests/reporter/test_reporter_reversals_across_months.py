"""Reversals reach Stripe across month boundaries: Stripe's bill per customer and month is the ledger's.

One workload on a clock the test moves (the service's, which the Stripe test
server follows), over four months: outcomes settled in each month, pending
ones settling by their window or confirmed after a boundary, one released;
reversals made the same minute (netted before sending), the same day
(cancel and resend), 25 hours later (paid by the month's next usage, or owed
and credited when the month closes), in a later month than their outcome,
and a month whose reversals outnumber its usage. Then, for every customer
and month: Stripe's total minus the units credited back equals the ledger's
net units, and in money (0.99 USD a unit) the ledger's net charge;
``reconcile`` agrees; and the request log shows nothing sent twice.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from sqlalchemy import select
from sqlalchemy.engine import Connection

from rating_service.app import Service
from rating_service.domain.postings import unit_asset, usage_charged, usage_outcomes
from rating_service.ledger.schema import balances
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import StripeTestServer

SETTINGS = ReporterSettings(window=timedelta(seconds=1))
CUSTOMERS = ("c0", "c1", "c2")
CENTS_PER_UNIT = 99
NANOS_PER_CENT = 10_000_000


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def period(start: datetime) -> str:
    return f"{start:%Y-%m}"


class Months:
    """The service, Stripe on its clock, a reporter, and the moves of the workload."""

    def __init__(
        self,
        service: Service,
        stub: rating_pb2_grpc.RatingServiceStub,
        clock: rs.MovableClock,
        server: StripeTestServer,
        gateway: StripeGateway,
    ) -> None:
        self.service = service
        self.stub = stub
        self.clock = clock
        self.server = server
        self.gateway = gateway
        self.reporter = Reporter(service.store, gateway, SETTINGS, clock)

    def move_to(self, moment: datetime) -> None:
        self.clock.advance(moment - self.clock())

    async def record(self, name: str, count: int, *, pending: bool = False) -> None:
        await rs.record_all(
            self.stub,
            [
                rs.outcome(c, f"{c}-{name}{i}", pending=pending)
                for c in CUSTOMERS
                for i in range(count)
            ],
        )

    async def reverse(self, *names: str) -> None:
        for c in CUSTOMERS:
            for name in names:
                await self.stub.ReverseOutcome(
                    pb.ReverseOutcomeRequest(customer_id=c, outcome_id=f"{c}-{name}", reason="r")
                )

    async def confirm(self, name: str) -> None:
        for c in CUSTOMERS:
            await self.stub.ConfirmOutcome(
                pb.ConfirmOutcomeRequest(customer_id=c, outcome_id=f"{c}-{name}")
            )

    async def report(self) -> None:
        await rs.drain(self.reporter, self.service.store)

    async def ledger(self, customer: str, month: str) -> tuple[int, int]:
        """The ledger's net units and net charge (nanos) of a customer's month."""

        def read(conn: Connection) -> tuple[int, int]:
            rows = conn.execute(
                select(balances.c.account, balances.c.asset, balances.c.amount).where(
                    balances.c.customer_id == customer,
                    balances.c.account.in_([usage_outcomes(month), usage_charged(month)]),
                )
            ).all()
            units = sum(
                r.amount
                for r in rows
                if r.account == usage_outcomes(month) and r.asset == unit_asset(rs.EVENT_NAME)
            )
            nanos = sum(
                r.amount for r in rows if r.account == usage_charged(month) and r.asset == "USD"
            )
            return units, nanos

        return await self.service.store.read(read)

    def stripe(self, customer: str, start: datetime) -> tuple[int, int, int]:
        """Stripe's units of a month (by event timestamp), the units and cents credited back."""
        end = next_month(start)
        units = sum(
            e.value
            for e in self.server.state.events
            if e.customer == f"cus_{customer}"
            and e.cancelled_at is None
            and start.timestamp() <= e.timestamp < end.timestamp()
        )
        grants = [
            g
            for g in self.server.state.grants_for(f"cus_{customer}")
            if g["metadata"].get("period") == period(start)
        ]
        credited = sum(int(g["metadata"]["units"]) for g in grants)
        cents = sum(g["amount"]["monetary"]["value"] for g in grants)
        return units, credited, cents

    def sent(self, operation_id: str) -> list[str]:
        """Identifiers as sent, from the request log: stream events, or cancels."""
        identifiers: list[str] = []
        for r in self.server.requests:
            if r.operation_id != operation_id or r.params is None:
                continue
            if operation_id == "PostV2BillingMeterEventStream":
                identifiers += [e["identifier"] for e in r.params["events"]]
            else:
                identifiers.append(r.params["cancel"]["identifier"])
        return identifiers


@pytest.fixture
async def months(
    service: Service, stub: rating_pb2_grpc.RatingServiceStub, clock: rs.MovableClock
) -> AsyncIterator[Months]:
    async with StripeTestServer(clock=lambda: clock().timestamp()) as server:
        gateway = StripeGateway(
            rs.API_KEY, api_base=server.base_url, meter_events_base=server.base_url, clock=clock
        )
        try:
            await rs.put_card(stub, "standard", "0.99", timedelta(hours=1))
            for c in CUSTOMERS:
                server.add_customer(f"cus_{c}")
                await rs.put_customer(stub, c, f"cus_{c}", "standard")
            await ensure_meters(service.store, gateway, SETTINGS, create=True)
            yield Months(service, stub, clock, server, gateway)
        finally:
            await gateway.close()


async def test_stripe_bills_every_customer_and_month_what_the_ledger_counts(
    months: Months,
) -> None:
    """Cancels within a day, debts after, credits at each month's close: per month, Stripe = ledger."""
    m1 = next_month(months.clock())
    while calendar.monthrange(m1.year, m1.month)[1] < 31:
        m1 = next_month(m1)
    m2 = next_month(m1)
    m3 = next_month(m2)
    m4 = next_month(m3)
    hour = timedelta(hours=1)

    # Month 1: settled usage; one reversal the same minute, one the same day.
    months.move_to(m1 + timedelta(days=27))
    await months.record("a", 10)
    await months.reverse("a0")
    await months.report()
    months.clock.advance(2 * hour)
    await months.reverse("a1")
    await months.report()
    # 25 hours on: one reversal paid by the month's next usage, two left owed.
    months.clock.advance(25 * hour)
    await months.reverse("a2")
    await months.record("b", 2)
    await months.report()
    await months.reverse("a3", "a4")
    await months.report()
    # The month's last half hour: pending outcomes, due after midnight.
    months.move_to(m2 - hour / 2)
    await months.record("p", 4, pending=True)
    await months.report()

    # Month 2, before month 1 closes: confirm one, release one, two settle by their window.
    months.move_to(m2 + hour / 3)
    await months.confirm("p0")
    await months.reverse("p1")
    months.move_to(m2 + 3 * hour / 4)
    await rs.wait_until_settled(months.stub, CUSTOMERS)
    await months.reverse("a5")  # month 1's outcome, reversed in month 2
    await months.record("c", 3)
    await months.report()
    months.move_to(m2 + hour + timedelta(seconds=1))  # month 1 closes
    await months.report()
    months.move_to(m2 + 2 * hour)
    await months.reverse("c0")  # the same day
    await months.report()

    # Month 3: more reversals of month 2's usage than usage.
    months.move_to(m3 + 2 * hour)
    await months.record("d", 1)
    await months.reverse("c1", "c2", "p0")
    await months.report()
    months.move_to(m4 + hour + timedelta(seconds=1))  # month 3 closes
    await months.report()

    print("\ncustomer  month    ledger (units, cents)  Stripe units  credited (units, cents)")
    for customer in CUSTOMERS:
        for start in (m1, m2, m3, m4):
            units, nanos = await months.ledger(customer, period(start))
            stripe_units, credited, credit_cents = months.stripe(customer, start)
            where = f"{customer} {period(start)}"
            print(
                f"{customer:9} {period(start)}  {units:5} {nanos // NANOS_PER_CENT:6}"
                f"          {stripe_units:5}         {credited:5} {credit_cents:6}"
            )
            assert stripe_units - credited == units, where
            assert stripe_units * CENTS_PER_UNIT - credit_cents == nanos // NANOS_PER_CENT, where
        assert months.stripe(customer, m1)[1:] == (2, 2 * CENTS_PER_UNIT)
        assert (await months.ledger(customer, period(m3)))[0] == -2
    result = await reconcile(months.service.store, months.gateway, SETTINGS, months.clock())
    assert result.ok, result.differences
    sent_events = months.sent("PostV2BillingMeterEventStream")
    sent_cancels = months.sent("PostV2BillingMeterEventAdjustments")
    assert [i for i, n in Counter(sent_events).items() if n > 1] == []
    assert [i for i, n in Counter(sent_cancels).items() if n > 1] == []
    assert len(sent_cancels) == 2 * len(CUSTOMERS)  # a1 (month 1) and c0 (month 2)
    assert all(r.status == 200 for r in months.server.requests)
