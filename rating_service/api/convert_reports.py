"""Report calls in and out: ListLedgerEntries, ExplainOutcome, PreviewInvoice, SimulateRateCard.

What cannot become a domain value raises InvalidArgument here (see ``servicer``).
"""

from __future__ import annotations

from datetime import datetime

from rating_client.v1 import rating_pb2 as pb

from rating_service.api.convert_buckets import bucket_out
from rating_service.api.convert_catalog import prices_in
from rating_service.api.convert_outcomes import STATES_OUT
from rating_service.api.page_tokens import PageTokens
from rating_service.api.wire import (
    money_out,
    time_in,
    time_out,
)
from rating_service.domain import billing, explanation, results
from rating_service.domain.commands import (
    ExplainOutcome,
    ListLedgerEntries,
    PreviewInvoice,
    SimulateRateCard,
)
from rating_service.domain.money import format_nanos
from rating_service.domain.postings import EntryKind, is_unit_asset

_KINDS_OUT = {
    kind: pb.LedgerEntryKind.Value(f"LEDGER_ENTRY_KIND_{kind.value}") for kind in EntryKind
}


_STEPS_OUT = {step: pb.OutcomeStep.Value(f"OUTCOME_STEP_{step.value}") for step in explanation.Step}
_USES_OUT = {use: pb.BucketUse.Value(f"BUCKET_USE_{use.value}") for use in explanation.BucketUse}
_EVENT_STATES_OUT = {
    state: pb.MeterEventState.Value(f"METER_EVENT_STATE_{state.value}")
    for state in explanation.MeterEventState
}


def list_entries_in(request: pb.ListLedgerEntriesRequest, tokens: PageTokens) -> ListLedgerEntries:
    return ListLedgerEntries(
        customer_id=request.customer_id,
        page_size=request.page_size,
        after=tokens.read(request.customer_id, request.page_token),
    )


def explain_outcome_in(request: pb.ExplainOutcomeRequest) -> ExplainOutcome:
    return ExplainOutcome(customer_id=request.customer_id, outcome_id=request.outcome_id)


def preview_invoice_in(request: pb.PreviewInvoiceRequest) -> PreviewInvoice:
    return PreviewInvoice(
        customer_id=request.customer_id, period_start=time_in(request, "period_start")
    )


def simulate_rate_card_in(request: pb.SimulateRateCardRequest) -> SimulateRateCard:
    which = request.WhichOneof("customers")
    return SimulateRateCard(
        rate_card_id=request.rate_card_id if which == "rate_card_id" else None,
        customer_ids=tuple(request.customer_list.customer_ids)
        if which == "customer_list"
        else None,
        period_start=time_in(request, "period_start"),
        currency=request.currency_code,
        prices=prices_in(request.prices, request.currency_code),
    )


def entry_out(entry: results.Entry) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        sequence=entry.sequence,
        transaction_id=entry.transaction_id,
        kind=_KINDS_OUT[entry.kind],
        customer_id=entry.customer_id,
        outcome_id=entry.outcome_id,
        request_id=entry.request_id,
        bucket_id=entry.bucket_id,
        units=entry.units,
        amount=money_out(entry.amount),
        occurred_at=time_out(entry.occurred_at),
        recorded_at=time_out(entry.recorded_at),
        postings=[
            pb.Posting(
                account=p.account,
                asset=p.asset,
                amount=str(p.amount) if is_unit_asset(p.asset) else format_nanos(p.amount),
            )
            for p in entry.postings
        ],
        outcome_type=entry.outcome_type,
        hash=entry.hash,
    )


def explanation_out(found: explanation.Explanation, now: datetime) -> pb.ExplainOutcomeResponse:
    o = found.outcome
    response = pb.ExplainOutcomeResponse(
        customer_id=o.customer_id,
        outcome_id=o.outcome_id,
        outcome_type=o.outcome_type,
        occurred_at=time_out(o.occurred_at),
        attributes=found.attributes,
        state=STATES_OUT[o.state],
        rate_card_id=o.rate_card_id,
        rate_card_version=time_out(o.rate_card_version),
        unit_price=money_out(o.unit_price),
        charged=money_out(o.charged),
        entries=[entry_out(e) for e in found.entries],
        stripe=pb.OutcomeStripeReport(
            stripe_customer_id=found.stripe_customer_id,
            meter_events=[
                pb.MeterEventReport(
                    identifier=e.identifier,
                    event_name=e.event_name,
                    value=e.value,
                    window_start=time_out(e.window_start),
                    first_sequence=e.first_sequence,
                    last_sequence=e.last_sequence,
                    state=_EVENT_STATES_OUT[e.state],
                    sent_at=None if e.sent_at is None else time_out(e.sent_at),
                )
                for e in found.meter_events
            ],
            credit_grants=[
                pb.CreditGrantReport(
                    bucket_id=g.bucket_id, credit_grant_id=g.grant_id, amount=money_out(g.amount)
                )
                for g in found.credit_grants
            ],
        ),
    )
    if found.bucket is not None and found.bucket_use is not None:
        response.buckets.append(
            pb.OutcomeBucket(
                use=_USES_OUT[found.bucket_use], units=1, bucket=bucket_out(found.bucket, now)
            )
        )
    for step in found.history:
        response.history.append(
            pb.OutcomeHistoryStep(
                step=_STEPS_OUT[step.step],
                at=time_out(step.at),
                recorded_at=time_out(step.recorded_at),
                ledger_sequence=step.sequence,
                period_start=None if step.period_start is None else time_out(step.period_start),
            )
        )
    return response


def invoice_out(invoice: billing.Invoice) -> pb.PreviewInvoiceResponse:
    return pb.PreviewInvoiceResponse(
        customer_id=invoice.customer_id,
        period_start=time_out(invoice.period_start),
        period_end=time_out(invoice.period_end),
        lines=[
            pb.InvoiceLine(
                outcome_type=line.outcome_type,
                unit_price=money_out(line.unit_price),
                settled=line.counts.settled,
                reversed=line.counts.reversed,
                net=line.counts.net,
                covered=line.counts.covered,
                billable=line.counts.billable,
                amount=money_out(line.amount),
            )
            for line in invoice.lines
        ],
        credits=money_out(invoice.credits),
        total=money_out(invoice.total),
        pending_outcomes=invoice.pending_outcomes,
        pending_charge=money_out(invoice.pending_charge),
        meters=[
            pb.MeterReport(
                event_name=m.event_name,
                planned=m.planned,
                sent=m.sent,
                debt=m.debt,
                credited=m.credited,
            )
            for m in invoice.meters
        ],
    )


def simulation_out(simulation: billing.Simulation) -> pb.SimulateRateCardResponse:
    return pb.SimulateRateCardResponse(
        period_start=time_out(simulation.period_start),
        customers=[
            pb.SimulatedCustomer(
                customer_id=c.customer_id,
                billable_outcomes=c.billable_outcomes,
                actual=money_out(c.actual),
                simulated=money_out(c.simulated),
                difference=money_out(c.difference),
            )
            for c in simulation.customers
        ],
        actual_total=money_out(simulation.actual_total),
        simulated_total=money_out(simulation.simulated_total),
        difference_total=money_out(simulation.difference_total),
    )
