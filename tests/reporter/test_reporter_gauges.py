"""The reporter's Prometheus gauges move with its work: the backlog as the ledger grows and
is planned and sent, the parked customers as one is parked and resumed, the drift as Stripe
comes to differ from the ledger.

Read from this process's registry after each step of a reporter (``Reporter`` over the real
gateway, SDK and Stripe test server, on the running service's ledger); each step sets them
from the ledger, so earlier tests' values do not matter.
"""

from __future__ import annotations

from datetime import timedelta

import reporter_support as rs
from support import all_entries

from rating_service.ledger import outbox
from rating_service.reporter.settings import ReporterSettings

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway
rig = rs.rig

SETTINGS = ReporterSettings(window=timedelta(seconds=1))
BACKLOG_KINDS = ("entries", "meter_events", "credit_grants")


def backlog_gauges() -> dict[str, float | None]:
    return {kind: rs.metric("rating_stripe_backlog", kind=kind) for kind in BACKLOG_KINDS}


def drift_gauges() -> tuple[float | None, float | None]:
    return rs.metric("rating_stripe_drift", kind="usage"), rs.metric(
        "rating_stripe_drift", kind="grant"
    )


async def customer_with_usage(rig: rs.Rig, customer_id: str, stripe_id: str, outcomes: int) -> None:
    """On the ``standard`` card, with a bucket of 10 and ``outcomes`` outcomes."""
    await rs.put_customer(rig.stub, customer_id, stripe_id, "standard")
    await rs.create_bucket(rig.stub, customer_id, f"bucket-{customer_id}", 10)
    await rs.record_all(rig.stub, [rs.outcome(customer_id, f"o-{i}") for i in range(outcomes)])


async def test_backlog_gauges_count_entries_then_planned_events_then_nothing(rig: rs.Rig) -> None:
    """Entries until planned; planned events until their meter exists and they are sent."""
    await rs.put_card(rig.stub, "standard", "0.99")
    rig.server.add_customer("cus_busy")
    await customer_with_usage(rig, "busy-co", "cus_busy", 12)
    entries = len(await all_entries(rig.stub, "busy-co"))
    reporter = rig.reporter(SETTINGS)

    await reporter.refresh_gauges()
    recorded = backlog_gauges()
    await reporter.run_once()  # no meter yet: planned and the grant made, the usage waits
    planned = backlog_gauges()
    events = len(await rs.planned_events(rig.store, rs.Plan({"busy-co": "cus_busy"})))
    await rig.set_up_meters(SETTINGS)
    await reporter.run_once()
    sent = backlog_gauges()

    assert entries > 12
    assert recorded == {"entries": entries, "meter_events": 0, "credit_grants": 1}
    assert events > 0
    assert planned == {"entries": 0, "meter_events": events, "credit_grants": 0}
    assert sent == dict.fromkeys(BACKLOG_KINDS, 0)
    assert rig.server.state.meter_totals("cus_busy", rs.EVENT_NAME) == 12


async def test_parked_gauge_counts_the_parked_customer_until_it_is_resumed(rig: rs.Rig) -> None:
    """Parked, its usage stays in the backlog; resumed with a Stripe id Stripe knows, it goes."""
    await rs.put_card(rig.stub, "standard", "0.99")
    rig.server.add_customer("cus_good")
    await customer_with_usage(rig, "good-co", "cus_good", 5)
    await customer_with_usage(rig, "lost-co", "cus_nobody", 8)
    await rig.set_up_meters(SETTINGS)
    reporter = rig.reporter(SETTINGS)

    await reporter.run_once()
    parked = rs.metric("rating_stripe_parked_customers"), backlog_gauges()
    rig.server.add_customer("cus_found")
    await rs.put_customer(rig.stub, "lost-co", "cus_found", "standard")
    await rig.store.write(lambda c: outbox.unpark_all(c, rig.clock()))
    await reporter.run_once()
    resumed = rs.metric("rating_stripe_parked_customers"), backlog_gauges()

    plan = rs.Plan({"good-co": "cus_good", "lost-co": "cus_nobody"})
    planned = await rs.planned_events(rig.store, plan)
    lost_events = [e for e in planned.values() if e[0] == "cus_nobody"]
    assert parked[0] == 1
    assert parked[1] == {"entries": 0, "meter_events": len(lost_events), "credit_grants": 0}
    assert parked[1]["meter_events"] > 0
    assert resumed == (0, dict.fromkeys(BACKLOG_KINDS, 0))
    assert rig.server.state.meter_totals("cus_found", rs.EVENT_NAME) == 8


async def test_drift_gauges_count_the_differences_reconciliation_finds(rig: rs.Rig) -> None:
    """0 while Stripe agrees; 1 usage once an extra event lands; 1 grant once one is voided."""
    reported = await rs.report_one_customer(rig)

    await rig.reconcile(SETTINGS)
    agreeing = drift_gauges()
    await rs.send_behind_the_reporters_back(rig.server, reported.stripe_customer_id, 3)
    await rig.reconcile(SETTINGS)
    extra_event = drift_gauges()
    await rs.void_behind_the_reporters_back(rig.server, reported.grant_id)
    await rig.reconcile(SETTINGS)
    voided_too = drift_gauges()

    assert agreeing == (0, 0)
    assert extra_event == (1, 0)
    assert voided_too == (1, 1)


def lag_gauges(quantile: str) -> tuple[float | None, float | None]:
    return rs.metric("rating_stripe_customer_lag_entries", quantile=quantile), rs.metric(
        "rating_stripe_customer_lag_seconds", quantile=quantile
    )


async def test_lag_gauges_show_the_customer_furthest_behind_until_it_is_reported(
    rig: rs.Rig,
) -> None:
    """Quantiles over customers being reported: an hour-old backlog of one, then nothing."""
    await rs.put_card(rig.stub, "standard", "0.99")
    rig.server.add_customer("cus_late")
    await customer_with_usage(rig, "late-co", "cus_late", 3)
    await customer_with_usage(rig, "waiting-co", "", 50)  # no Stripe id: not in the quantiles
    entries = len(await all_entries(rig.stub, "late-co"))
    await rig.set_up_meters(SETTINGS)
    reporter = rig.reporter(SETTINGS)

    rig.clock.advance(timedelta(hours=1))
    await reporter.refresh_gauges()
    behind = lag_gauges("1.0")
    await reporter.run_once()
    caught_up = lag_gauges("1.0"), lag_gauges("0.5")

    assert behind[0] == entries
    assert (behind[1] or 0) >= 3600
    assert caught_up == ((0, 0), (0, 0))


async def test_stripe_calls_are_counted_by_endpoint_and_outcome(rig: rs.Rig) -> None:
    """A pass that reports one customer counts its meter events sent and its grant created."""
    calls = "rating_stripe_calls_total"
    sent_ok = {"endpoint": "MeterEventStream.create", "outcome": "ok"}
    before = rs.metric(calls, **sent_ok) or 0

    await rs.report_one_customer(rig)

    assert (rs.metric(calls, **sent_ok) or 0) > before
    assert (rs.metric(calls, endpoint="CreditGrant.create", outcome="ok") or 0) >= 1
