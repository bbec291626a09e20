"""What Stripe was told, as ExplainOutcome and PreviewInvoice read it from the reporter's outbox."""

from __future__ import annotations

import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb

from rating_service.reporter.settings import ReporterSettings

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway
rig = rs.rig


async def test_an_explained_outcome_names_the_meter_event_stripe_accepted_and_its_grant(
    rig: rs.Rig,
) -> None:
    """After a report, the outcome's settlement lies in one SENT event that Stripe holds, and
    the bucket it drew has the credit grant Stripe made."""
    reported = await rs.report_one_customer(rig)

    explained = await rig.stub.ExplainOutcome(
        pb.ExplainOutcomeRequest(customer_id=reported.customer_id, outcome_id="o-0")
    )

    stripe = explained.stripe
    assert stripe.stripe_customer_id == reported.stripe_customer_id
    (event,) = stripe.meter_events
    assert event.state == pb.METER_EVENT_STATE_SENT
    assert event.HasField("sent_at")
    assert event.first_sequence <= explained.history[-1].ledger_sequence <= event.last_sequence
    held = rs.stripe_events(rig.server)
    assert held[event.identifier] == (reported.stripe_customer_id, event.value)
    assert [(g.bucket_id, g.credit_grant_id) for g in stripe.credit_grants] == [
        (reported.bucket_id, reported.grant_id)
    ]


async def test_an_invoice_preview_shows_per_meter_what_stripe_has(rig: rs.Rig) -> None:
    """Planned and sent equal the month's outcomes once everything is reported; no debt."""
    reported = await rs.report_one_customer(rig)

    invoice = await rig.stub.PreviewInvoice(
        pb.PreviewInvoiceRequest(customer_id=reported.customer_id)
    )

    assert [(m.event_name, m.planned, m.sent, m.debt, m.credited) for m in invoice.meters] == [
        (rs.EVENT_NAME, reported.outcomes, reported.outcomes, 0, 0)
    ]
    assert sum(line.net for line in invoice.lines) == reported.outcomes


async def test_a_reversal_within_a_day_shows_the_cancelled_event_and_its_replacement(
    rig: rs.Rig,
) -> None:
    """Reversed after its report: the event that carried it is CANCELLED in Stripe, and a
    replacement over the same ledger range carries the rest (one outcome fewer)."""
    reported = await rs.report_one_customer(rig)
    await rig.stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=reported.customer_id, outcome_id="o-20", reason="r")
    )
    await rs.drain(rig.reporter(ReporterSettings()), rig.store)

    explained = await rig.stub.ExplainOutcome(
        pb.ExplainOutcomeRequest(customer_id=reported.customer_id, outcome_id="o-20")
    )
    invoice = await rig.stub.PreviewInvoice(
        pb.PreviewInvoiceRequest(customer_id=reported.customer_id)
    )

    events = sorted(explained.stripe.meter_events, key=lambda e: e.state)
    assert [(e.state, e.value) for e in events] == [
        (pb.METER_EVENT_STATE_SENT, reported.outcomes - 1),
        (pb.METER_EVENT_STATE_CANCELLED, reported.outcomes),
    ]
    assert len({(e.first_sequence, e.last_sequence) for e in events}) == 1
    assert [(m.planned, m.sent) for m in invoice.meters] == [
        (reported.outcomes - 1, reported.outcomes - 1)
    ]
    assert sum(line.net for line in invoice.lines) == reported.outcomes - 1
