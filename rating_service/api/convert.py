"""Proto <-> domain: the servicer's only vocabulary.

Requests become domain commands and results become responses; scalar values
(Money, times, durations) go through ``wire``. What cannot become a domain
value raises InvalidArgument here; whether a command is allowed is for its
``validate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rating_client.v1 import rating_pb2 as pb

from rating_service.api.errors import to_status
from rating_service.api.page_tokens import PageTokens
from rating_service.api.wire import (
    duration_in,
    duration_out,
    money_in,
    money_out,
    set_money,
    set_time,
    stamp_in,
    time_in,
    time_out,
)
from rating_service.domain import billing, explanation, results
from rating_service.domain import buckets as dbuckets
from rating_service.domain.commands import (
    ConfirmOutcome,
    ConsumeBucket,
    CreateBucket,
    ExplainOutcome,
    GetBalance,
    ListLedgerEntries,
    OutcomeState,
    PreviewInvoice,
    PutCustomer,
    PutRateCard,
    PutSpendControls,
    QuoteCost,
    RecordOutcome,
    ReverseOutcome,
    SimulateRateCard,
    VoidBucket,
    WatchAlerts,
)
from rating_service.domain.errors import InvalidArgument
from rating_service.domain.money import Money, format_nanos
from rating_service.domain.postings import EntryKind, is_unit_asset
from rating_service.domain.ratecard import DEFAULT_SETTLEMENT_WINDOW, Price, RateCardVersion
from rating_service.domain.rating import Quote
from rating_service.domain.spend import Alert

# ---- enums -------------------------------------------------------------------------

_STATES_IN = {
    pb.OUTCOME_STATE_UNSPECIFIED: OutcomeState.CONFIRMED,
    pb.OUTCOME_STATE_CONFIRMED: OutcomeState.CONFIRMED,
    pb.OUTCOME_STATE_PENDING: OutcomeState.PENDING,
    # Not input states: RecordOutcome.validate refuses them.
    pb.OUTCOME_STATE_SETTLED: OutcomeState.SETTLED,
    pb.OUTCOME_STATE_RELEASED: OutcomeState.RELEASED,
    pb.OUTCOME_STATE_REVERSED: OutcomeState.REVERSED,
}
_STATES_OUT = {
    OutcomeState.PENDING: pb.OUTCOME_STATE_PENDING,
    OutcomeState.SETTLED: pb.OUTCOME_STATE_SETTLED,
    OutcomeState.CONFIRMED: pb.OUTCOME_STATE_SETTLED,
    OutcomeState.RELEASED: pb.OUTCOME_STATE_RELEASED,
    OutcomeState.REVERSED: pb.OUTCOME_STATE_REVERSED,
}
_SOURCES_IN = {
    pb.BUCKET_SOURCE_UNSPECIFIED: dbuckets.BucketSource.PURCHASE,
    pb.BUCKET_SOURCE_PURCHASE: dbuckets.BucketSource.PURCHASE,
    pb.BUCKET_SOURCE_REALLOCATION: dbuckets.BucketSource.REALLOCATION,
    pb.BUCKET_SOURCE_PROMOTIONAL: dbuckets.BucketSource.PROMOTIONAL,
}
_SOURCES_OUT = {source: number for number, source in _SOURCES_IN.items() if number}
_STATUSES_OUT = {
    dbuckets.BucketStatus.ACTIVE: pb.BUCKET_STATUS_ACTIVE,
    dbuckets.BucketStatus.SCHEDULED: pb.BUCKET_STATUS_SCHEDULED,
    dbuckets.BucketStatus.EXPIRED: pb.BUCKET_STATUS_EXPIRED,
    dbuckets.BucketStatus.EXHAUSTED: pb.BUCKET_STATUS_EXHAUSTED,
    dbuckets.BucketStatus.VOIDED: pb.BUCKET_STATUS_VOIDED,
}
_KINDS_OUT = {
    kind: pb.LedgerEntryKind.Value(f"LEDGER_ENTRY_KIND_{kind.value}") for kind in EntryKind
}


# ---- requests ----------------------------------------------------------------------


def record_outcome_in(request: pb.RecordOutcomeRequest, prefix: str = "") -> RecordOutcome:
    state = _STATES_IN.get(request.state)
    if state is None:  # a number the proto does not define
        raise InvalidArgument.field(
            f"{prefix}state", "must be OUTCOME_STATE_CONFIRMED or OUTCOME_STATE_PENDING"
        )
    return RecordOutcome(
        customer_id=request.customer_id,
        outcome_id=request.outcome_id,
        outcome_type=request.outcome_type,
        occurred_at=stamp_in(request.occurred_at, f"{prefix}occurred_at")
        if request.HasField("occurred_at")
        else None,
        state=state,
        attributes=dict(request.attributes),
    )


def record_outcomes_in(request: pb.RecordOutcomesRequest) -> list[RecordOutcome | InvalidArgument]:
    """Each item as a command, or as the error it could not be read with (``requests[i].``)."""
    items: list[RecordOutcome | InvalidArgument] = []
    for i, item in enumerate(request.requests):
        try:
            items.append(record_outcome_in(item, prefix=f"requests[{i}]."))
        except InvalidArgument as error:
            items.append(error)
    return items


def confirm_outcome_in(request: pb.ConfirmOutcomeRequest) -> ConfirmOutcome:
    return ConfirmOutcome(customer_id=request.customer_id, outcome_id=request.outcome_id)


def reverse_outcome_in(request: pb.ReverseOutcomeRequest) -> ReverseOutcome:
    return ReverseOutcome(
        customer_id=request.customer_id, outcome_id=request.outcome_id, reason=request.reason
    )


def quote_cost_in(request: pb.QuoteCostRequest) -> QuoteCost:
    return QuoteCost(
        customer_id=request.customer_id,
        outcome_type=request.outcome_type,
        quantity=request.quantity,
        at=time_in(request, "at"),
    )


def consume_bucket_in(request: pb.ConsumeBucketRequest) -> ConsumeBucket:
    return ConsumeBucket(
        customer_id=request.customer_id,
        request_id=request.request_id,
        outcome_type=request.outcome_type,
        quantity=request.quantity,
        bucket_id=request.bucket_id,
        reason=request.reason,
    )


def create_bucket_in(request: pb.CreateBucketRequest) -> CreateBucket:
    source = _SOURCES_IN.get(request.source)
    if source is None:
        raise InvalidArgument.field("source", "is not a known BucketSource")
    size = request.WhichOneof("size")
    return CreateBucket(
        customer_id=request.customer_id,
        bucket_id=request.bucket_id,
        outcome_type=request.outcome_type,
        quantity=request.quantity if size == "quantity" else None,
        funding=money_in(request.funding, "funding") if size == "funding" else None,
        valid_from=time_in(request, "valid_from"),
        valid_until=time_in(request, "valid_until"),
        unit_price=money_in(request.unit_price, "unit_price")
        if request.HasField("unit_price")
        else None,
        source=source,
        priority=request.priority,
    )


def put_customer_in(request: pb.PutCustomerRequest) -> PutCustomer:
    return PutCustomer(
        customer_id=request.customer_id,
        stripe_customer_id=request.stripe_customer_id,
        rate_card_id=request.rate_card_id,
    )


def _prices_in(prices_in: Sequence[pb.Price], currency_code: str) -> tuple[Price, ...]:
    prices = []
    for i, price in enumerate(prices_in):
        field = f"prices[{i}]"
        if not price.HasField("unit_price"):
            raise InvalidArgument.field(f"{field}.unit_price", "is required")
        unit_price = money_in(price.unit_price, f"{field}.unit_price")
        if not unit_price.currency:  # the rate card's currency applies
            unit_price = Money(currency_code, unit_price.nanos)
        window = (
            duration_in(price.settlement_window, f"{field}.settlement_window")
            if price.HasField("settlement_window")
            else DEFAULT_SETTLEMENT_WINDOW
        )
        prices.append(Price(price.outcome_type, unit_price, window))
    return tuple(prices)


def put_rate_card_in(request: pb.PutRateCardRequest) -> PutRateCard:
    return PutRateCard(
        rate_card_id=request.rate_card_id,
        effective_from=time_in(request, "effective_from"),
        currency=request.currency_code,
        prices=_prices_in(request.prices, request.currency_code),
    )


def void_bucket_in(request: pb.VoidBucketRequest) -> VoidBucket:
    return VoidBucket(
        customer_id=request.customer_id, bucket_id=request.bucket_id, reason=request.reason
    )


def put_spend_controls_in(request: pb.PutSpendControlsRequest) -> PutSpendControls:
    return PutSpendControls(
        customer_id=request.customer_id,
        request_id=request.request_id,
        alert_thresholds=tuple(
            money_in(t, f"alert_thresholds[{i}]") for i, t in enumerate(request.alert_thresholds)
        ),
        hard_limit=money_in(request.hard_limit, "hard_limit")
        if request.HasField("hard_limit")
        else None,
    )


def watch_alerts_in(request: pb.WatchAlertsRequest) -> WatchAlerts:
    return WatchAlerts(customer_id=request.customer_id, after_alert_id=request.after_alert_id)


def get_balance_in(request: pb.GetBalanceRequest) -> GetBalance:
    return GetBalance(customer_id=request.customer_id)


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
        prices=_prices_in(request.prices, request.currency_code),
    )


# ---- responses ---------------------------------------------------------------------


def outcome_recorded_out(result: results.OutcomeRecorded) -> pb.RecordOutcomeResponse:
    # Fields are set in place: keyword construction would build each sub-message
    # (Money, Timestamp) on its own and then copy it in, at several times the cost.
    response = pb.RecordOutcomeResponse()
    response.ledger_sequence = result.ledger_sequence
    set_money(response.unit_price, result.unit_price)
    response.units_from_buckets = 1 if result.bucket_id else 0
    set_money(response.charged, result.charged)
    set_time(response.rate_card_version, result.rate_card_version)
    response.state = _STATES_OUT[result.state]
    response.replayed = result.replayed
    response.bucket_id = result.bucket_id or ""
    if result.settles_at is not None:
        set_time(response.settles_at, result.settles_at)
    return response


def record_outcomes_out(
    answers: Sequence[results.OutcomeRecorded | Exception],
) -> pb.RecordOutcomesResponse:
    """One result per item, in order: its response, or its error's status."""
    return pb.RecordOutcomesResponse(
        results=[
            pb.RecordOutcomeResult(error=to_status(answer))
            if isinstance(answer, Exception)
            else pb.RecordOutcomeResult(response=outcome_recorded_out(answer))
            for answer in answers
        ]
    )


def outcome_confirmed_out(result: results.OutcomeConfirmed) -> pb.ConfirmOutcomeResponse:
    return pb.ConfirmOutcomeResponse(
        ledger_sequence=result.ledger_sequence,
        state=pb.OUTCOME_STATE_SETTLED,
        replayed=result.replayed,
    )


def outcome_undone_out(result: results.OutcomeUndone) -> pb.ReverseOutcomeResponse:
    return pb.ReverseOutcomeResponse(
        ledger_sequence=result.ledger_sequence,
        state=_STATES_OUT[result.state],
        units_returned=result.units_returned,
        refunded=money_out(result.refunded),
        replayed=result.replayed,
    )


def quote_out(quote: Quote) -> pb.QuoteCostResponse:
    response = pb.QuoteCostResponse(
        unit_price=money_out(quote.unit_price),
        units_covered=quote.units_covered,
        units_billable=quote.units_billable,
        total=money_out(quote.total),
        rate_card_version=time_out(quote.rate_card_version),
        lines=[
            pb.BucketLine(bucket_id=d.bucket_id, units=d.units, remaining=d.remaining)
            for d in quote.lines
        ],
    )
    if quote.limit_remaining is not None:
        set_money(response.limit_remaining, quote.limit_remaining)
    return response


def consumed_out(result: results.Consumed) -> pb.ConsumeBucketResponse:
    return pb.ConsumeBucketResponse(
        consumed=result.consumed,
        lines=[
            pb.BucketLine(bucket_id=d.bucket_id, units=d.units, remaining=d.remaining)
            for d in result.lines
        ],
        remaining_total=result.remaining_total,
        ledger_sequence=result.ledger_sequence,
        replayed=result.replayed,
    )


def bucket_out(
    bucket: dbuckets.Bucket,
    now: datetime,
    *,
    replayed: bool = False,
    sequence: int = 0,
    exhaustion: datetime | None = None,
) -> pb.Bucket:
    return pb.Bucket(
        bucket_id=bucket.bucket_id,
        outcome_type=bucket.outcome_type,
        quantity=bucket.quantity,
        remaining=bucket.remaining,
        held=bucket.held,
        valid_from=time_out(bucket.valid_from),
        valid_until=time_out(bucket.valid_until),
        unit_price=money_out(bucket.unit_price),
        source=_SOURCES_OUT[bucket.source],
        status=_STATUSES_OUT[bucket.status(now)],
        priority=bucket.priority,
        replayed=replayed,
        ledger_sequence=sequence or bucket.created_sequence,
        projected_exhaustion=None if exhaustion is None else time_out(exhaustion),
    )


def balance_out(balance: results.Balance, now: datetime) -> pb.GetBalanceResponse:
    return pb.GetBalanceResponse(
        buckets=[
            bucket_out(b, now, exhaustion=balance.exhaustion.get(b.bucket_id))
            for b in balance.buckets
        ],
        period_start=time_out(balance.period_start),
        period_outcomes=balance.period_outcomes,
        period_charged=money_out(balance.period_charged),
        pending_outcomes=balance.pending_outcomes,
        pending_charge=money_out(balance.pending_charge),
        ledger_sequence=balance.ledger_sequence,
        forecast=pb.BalanceForecast(
            projected_period_outcomes=balance.projected_outcomes,
            projected_period_charge=money_out(balance.projected_charge),
        ),
    )


def customer_out(put: results.CustomerPut) -> pb.PutCustomerResponse:
    c = put.customer
    return pb.PutCustomerResponse(
        customer=pb.Customer(
            customer_id=c.customer_id,
            stripe_customer_id=c.stripe_customer_id,
            rate_card_id=c.rate_card_id,
            create_time=time_out(c.created_at),
            update_time=time_out(c.updated_at),
        ),
        replayed=put.replayed,
    )


def rate_card_out(version: RateCardVersion) -> pb.RateCardVersion:
    return pb.RateCardVersion(
        rate_card_id=version.rate_card_id,
        effective_from=time_out(version.effective_from),
        currency_code=version.currency,
        prices=[
            pb.Price(
                outcome_type=p.outcome_type,
                unit_price=money_out(p.unit_price),
                settlement_window=duration_out(p.settlement_window),
            )
            for p in sorted(version.prices.values(), key=lambda p: p.outcome_type)
        ],
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


def bucket_voided_out(result: results.BucketVoided, now: datetime) -> pb.VoidBucketResponse:
    return pb.VoidBucketResponse(
        bucket=bucket_out(result.bucket, now),
        units_expired=result.units_expired,
        ledger_sequence=result.ledger_sequence,
        void_time=time_out(result.voided_at),
        replayed=result.replayed,
    )


def spend_controls_out(put: results.SpendControlsPut) -> pb.PutSpendControlsResponse:
    controls = pb.SpendControls(
        customer_id=put.customer_id,
        alert_thresholds=[money_out(t) for t in put.controls.thresholds],
        update_time=time_out(put.controls.updated_at),
    )
    limit = put.controls.limit
    if limit is not None:
        set_money(controls.hard_limit, limit)
    return pb.PutSpendControlsResponse(spend_controls=controls, replayed=put.replayed)


def alert_out(alert: Alert) -> pb.WatchAlertsResponse:
    return pb.WatchAlertsResponse(
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        period_start=time_out(alert.period_start),
        threshold=money_out(alert.threshold),
        period_charged=money_out(alert.period_charged),
        crossed_at=time_out(alert.crossed_at),
    )


_STEPS_OUT = {step: pb.OutcomeStep.Value(f"OUTCOME_STEP_{step.value}") for step in explanation.Step}
_USES_OUT = {use: pb.BucketUse.Value(f"BUCKET_USE_{use.value}") for use in explanation.BucketUse}
_EVENT_STATES_OUT = {
    state: pb.MeterEventState.Value(f"METER_EVENT_STATE_{state.value}")
    for state in explanation.MeterEventState
}


def explanation_out(found: explanation.Explanation, now: datetime) -> pb.ExplainOutcomeResponse:
    o = found.outcome
    response = pb.ExplainOutcomeResponse(
        customer_id=o.customer_id,
        outcome_id=o.outcome_id,
        outcome_type=o.outcome_type,
        occurred_at=time_out(o.occurred_at),
        attributes=found.attributes,
        state=_STATES_OUT[o.state],
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
