"""The reversal policy as Stripe ends up seeing it (domain/usage.py).

Stripe has no negative usage: a reversal of usage not yet reported keeps it
from being reported; a reversal of usage Stripe received less than 23 hours
ago cancels the meter event that carried it and resends the remainder; a
later one is a debt that the month's next usage pays off. Windows are 1 s,
and the Stripe test server follows the service's clock, which these tests
move on (from the 10th of a month, so that a day later is the same month).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service
from rating_service.reporter.gateway import TransientStripeError
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.testing.stripe_server import StripeTestServer

SETTINGS = ReporterSettings(window=timedelta(seconds=1))
CUSTOMER = "rev-co"
STRIPE_ID = "cus_rev"


class World:
    """The service, a Stripe test server on the service's clock, and a reporter between them."""

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
        self._next = 0

    def cancels(self) -> list[tuple[str | None, bool, bool]]:
        """Cancel requests as sent: (idempotency key, applied, answered 200), in order."""
        return [
            (r.idempotency_key, r.applied, r.status == 200)
            for r in self.server.requests
            if r.operation_id == "PostV2BillingMeterEventAdjustments"
        ]

    def live_events(self) -> list[int]:
        """Values of the events Stripe counts, in arrival order."""
        return [e.value for e in self.server.state.events if e.cancelled_at is None]

    async def record(self, count: int) -> list[str]:
        ids = [f"o-{self._next + i}" for i in range(count)]
        self._next += count
        await rs.record_all(self.stub, [rs.outcome(CUSTOMER, i) for i in ids])
        return ids

    async def reverse(self, outcome_ids: list[str]) -> None:
        for outcome_id in outcome_ids:
            await self.stub.ReverseOutcome(
                pb.ReverseOutcomeRequest(customer_id=CUSTOMER, outcome_id=outcome_id, reason="r")
            )

    def later(self) -> None:
        """Move past the current aggregation window."""
        self.clock.advance(timedelta(seconds=2))

    async def report(self) -> None:
        await rs.drain(self.reporter, self.service.store)

    def in_stripe(self) -> int:
        return self.server.state.meter_totals(STRIPE_ID, rs.EVENT_NAME)

    async def in_ledger(self) -> int:
        return await rs.ledger_usage(self.stub, CUSTOMER)


@pytest.fixture
async def world(
    service: Service, stub: rating_pb2_grpc.RatingServiceStub, clock: rs.MovableClock
) -> AsyncIterator[World]:
    now = clock()
    tenth = datetime(now.year + now.month // 12, now.month % 12 + 1, 10, tzinfo=UTC)
    clock.advance(tenth - now)
    async with StripeTestServer(clock=lambda: clock().timestamp()) as server:
        gateway = StripeGateway(
            rs.API_KEY, api_base=server.base_url, meter_events_base=server.base_url, clock=clock
        )
        try:
            await rs.put_card(stub, "standard", "0.99")
            server.add_customer(STRIPE_ID)
            await rs.put_customer(stub, CUSTOMER, STRIPE_ID, "standard")
            await ensure_meters(service.store, gateway, SETTINGS, create=True)
            yield World(service, stub, clock, server, gateway)
        finally:
            await gateway.close()


async def test_usage_reversed_before_it_is_reported_never_reaches_stripe(world: World) -> None:
    """Outcomes reversed before the reporter ran are not billed, whatever their windows."""
    outcomes = await world.record(5)
    world.later()
    await world.reverse(outcomes[:2])

    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (3, 3)


async def test_usage_reversed_in_its_own_window_before_reporting_is_never_sent(
    world: World,
) -> None:
    """Outcomes reversed within their aggregation window are netted before anything is sent."""
    outcomes = await world.record(5)
    await world.reverse(outcomes[:2])

    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (3, 3)


async def test_a_reversal_within_a_day_cancels_the_event_that_carried_it_and_resends_the_rest(
    world: World,
) -> None:
    """One cancel of the reported event, one replacement with its remainder."""
    outcomes = await world.record(5)
    await world.report()
    world.clock.advance(timedelta(hours=22))
    await world.reverse(outcomes[:1])

    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (4, 4)
    assert world.live_events() == [4]
    assert [(applied, ok) for _, applied, ok in world.cancels()] == [(True, True)]


async def test_reversals_made_before_the_cancel_reaches_stripe_fold_into_one_replacement(
    world: World,
) -> None:
    """A cancel held up by Stripe's failure is made once; the later reversal joins its replacement."""
    outcomes = await world.record(5)
    await world.report()
    world.later()
    await world.reverse(outcomes[:1])
    world.server.faults.inject("server_error", path="/v2/billing/meter_event_adjustments")
    with pytest.raises(TransientStripeError):
        await world.reporter.run_once()
    await world.reverse(outcomes[1:3])

    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (2, 2)
    assert world.live_events() == [2]
    assert [applied for _, applied, _ in world.cancels()] == [False, True]


async def test_a_reversal_of_usage_planned_but_not_yet_sent_cancels_it_once_sent_owing_nothing(
    world: World,
) -> None:
    """The send failed after planning: the event is sent, then cancelled, then replaced.

    Stripe then counts the remainder once, and nothing is owed back when the month closes.
    """
    outcomes = await world.record(5)
    world.later()
    world.server.faults.inject("server_error", path="/v2/billing/meter_event_stream")
    with pytest.raises(TransientStripeError):
        await world.reporter.run_once()
    await world.reverse(outcomes[:1])
    await world.report()
    now = world.clock()
    world.clock.advance(
        datetime(now.year + now.month // 12, now.month % 12 + 1, 1, 1, 0, 1, tzinfo=UTC) - now
    )

    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (4, 4)
    assert world.live_events() == [4]
    assert [ok for _, _, ok in world.cancels()] == [True]
    assert world.server.state.grants_for(STRIPE_ID) == []
    assert (await reconcile(world.service.store, world.gateway, SETTINGS, world.clock())).ok


async def test_a_reversal_of_usage_whose_send_lost_its_answer_cancels_what_stripe_got(
    world: World,
) -> None:
    """Stripe stored the event but its answer was lost: the cancel finds it and takes it out."""
    outcomes = await world.record(5)
    world.later()
    world.server.faults.inject(
        "server_error", path="/v2/billing/meter_event_stream", after_apply=True
    )
    with pytest.raises(TransientStripeError):
        await world.reporter.run_once()
    await world.reverse(outcomes[:1])

    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (4, 4)
    assert world.live_events() == [4]
    assert [ok for _, _, ok in world.cancels()] == [True]


async def test_a_cancel_whose_answer_was_lost_is_not_made_twice(world: World) -> None:
    """The retry carries the same idempotency key: Stripe replays the cancel's answer."""
    outcomes = await world.record(5)
    await world.report()
    world.later()
    await world.reverse(outcomes[:2])
    world.server.faults.inject(
        "server_error", path="/v2/billing/meter_event_adjustments", after_apply=True
    )
    with pytest.raises(TransientStripeError):
        await world.reporter.run_once()

    await world.report()

    cancels = [r for r in world.server.requests if r.path.endswith("/meter_event_adjustments")]
    assert (await world.in_ledger(), world.in_stripe()) == (3, 3)
    assert [(r.applied, r.replayed, r.status) for r in cancels] == [
        (True, False, 500),
        (False, True, 200),
    ]
    assert len({r.idempotency_key for r in cancels}) == 1


async def test_a_cancel_stripe_refuses_as_too_late_becomes_the_months_debt(
    world: World,
) -> None:
    """Planned at 22 h, sent at 25 h: refused; the reversal is owed and paid by later usage."""
    outcomes = await world.record(5)
    await world.report()
    world.clock.advance(timedelta(hours=22))
    await world.reverse(outcomes[:1])
    world.server.faults.inject("server_error", path="/v2/billing/meter_event_adjustments")
    with pytest.raises(TransientStripeError):
        await world.reporter.run_once()
    world.clock.advance(timedelta(hours=3))

    await world.report()
    assert world.in_stripe() == 5
    await world.record(3)
    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (7, 7)
    assert [ok for _, _, ok in world.cancels()] == [False, False]


async def test_a_reversal_a_day_later_is_paid_off_by_the_months_next_usage(
    world: World,
) -> None:
    """Past Stripe's 24 hours Stripe's total stays put, then grows only by usage beyond the debt."""
    outcomes = await world.record(5)
    await world.report()
    world.clock.advance(timedelta(hours=25))
    await world.reverse(outcomes[:2])
    await world.report()
    assert world.in_stripe() == 5  # no negative usage in Stripe
    assert world.cancels() == []
    world.later()

    await world.record(4)
    await world.report()

    assert (await world.in_ledger(), world.in_stripe()) == (7, 7)


async def test_what_a_month_still_owes_back_when_it_closes_becomes_a_credit_of_exactly_that(
    world: World,
) -> None:
    """Open month: the debt is no drift. Closed (end + 1 h grace): one grant of 2 x 0.99 USD."""
    outcomes = await world.record(5)
    await world.report()
    world.clock.advance(timedelta(hours=25))
    await world.reverse(outcomes[:2])
    await world.report()
    assert (await reconcile(world.service.store, world.gateway, SETTINGS, world.clock())).ok
    now = world.clock()
    world.clock.advance(
        datetime(now.year + now.month // 12, now.month % 12 + 1, 1, 1, 0, 1, tzinfo=UTC) - now
    )
    before = await reconcile(world.service.store, world.gateway, SETTINGS, world.clock())

    await world.report()
    await world.report()

    after = await reconcile(world.service.store, world.gateway, SETTINGS, world.clock())
    grants = world.server.state.grants_for(STRIPE_ID)
    assert [(d.kind, d.ledger, d.stripe, d.note) for d in before.differences] == [
        ("usage", "3", "5", "2 owed back, not yet credited"),
        ("money", "297 usd", "495 usd", "Stripe: 5 x 99 less 0 covered by buckets"),
    ]
    assert [(g["amount"]["monetary"], g["expires_at"]) for g in grants] == [
        ({"currency": "usd", "value": 198}, None)
    ]
    assert grants[0]["applicability_config"]["scope"] == {"price_type": "metered"}
    assert after.ok, after.differences
    assert world.in_stripe() == 5


async def test_reconcile_reports_no_difference_once_the_debt_is_paid(world: World) -> None:
    """After the period's next usage paid the debt off, Stripe and the ledger agree."""
    outcomes = await world.record(5)
    await world.report()
    world.clock.advance(timedelta(hours=25))
    await world.reverse(outcomes[:2])
    await world.report()
    world.later()
    await world.record(2)
    await world.report()

    result = await reconcile(world.service.store, world.gateway, SETTINGS, world.clock())

    assert result.differences == ()
