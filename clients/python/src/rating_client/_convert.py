"""Translation between the wire messages and the client's plain values.

Kept apart from the client so that the I/O code reads as a list of calls and
each mapping is written once: the same ``bucket`` serves CreateBucket and
GetBalance, the same ``outcome_request`` serves RecordOutcome and
RecordOutcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

# No py.typed marker in googleapis-common-protos: see rating_client._money.
from google.type import money_pb2

from rating_client import _types as t
from rating_client._money import decimal_to_money, money_to_decimal
from rating_client.v1 import rating_pb2 as pb

_V = TypeVar("_V")

DEFAULT_SETTLEMENT_WINDOW = timedelta(hours=24)
"""What an absent ``Price.settlement_window`` means, per the contract."""

_RECORD_STATES: dict[str, pb.OutcomeState.ValueType] = {
    "CONFIRMED": pb.OUTCOME_STATE_CONFIRMED,
    "PENDING": pb.OUTCOME_STATE_PENDING,
}
_BUCKET_SOURCES: dict[str, pb.BucketSource.ValueType] = {
    "PURCHASE": pb.BUCKET_SOURCE_PURCHASE,
    "REALLOCATION": pb.BUCKET_SOURCE_REALLOCATION,
    "PROMOTIONAL": pb.BUCKET_SOURCE_PROMOTIONAL,
}


# Requests ------------------------------------------------------------------


def timestamp(moment: datetime) -> Timestamp:
    """Return ``moment`` as a Timestamp; a naive datetime is refused, not guessed."""
    if moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} must be timezone-aware")
    message = Timestamp()
    message.FromDatetime(moment)
    return message


def optional_timestamp(moment: datetime | None) -> Timestamp | None:
    """Return None for None, so that the field stays absent (meaning now)."""
    return None if moment is None else timestamp(moment)


def duration(span: timedelta) -> Duration:
    """Return ``span`` as a Duration."""
    message = Duration()
    message.FromTimedelta(span)
    return message


def optional_money(amount: Decimal | None, currency_code: str) -> money_pb2.Money | None:
    """Return None for None, so that the field stays absent."""
    return None if amount is None else decimal_to_money(amount, currency_code)


def record_state(state: str | None) -> pb.OutcomeState.ValueType:
    """Return the wire value of an input state; None leaves it unspecified."""
    return pb.OUTCOME_STATE_UNSPECIFIED if state is None else _choose(_RECORD_STATES, state)


def bucket_source(source: str | None) -> pb.BucketSource.ValueType:
    """Return the wire value of a bucket source; None leaves it unspecified."""
    return pb.BUCKET_SOURCE_UNSPECIFIED if source is None else _choose(_BUCKET_SOURCES, source)


def outcome_request(outcome: t.NewOutcome) -> pb.RecordOutcomeRequest:
    """Return the request that records ``outcome``."""
    return pb.RecordOutcomeRequest(
        customer_id=outcome.customer_id,
        outcome_id=outcome.outcome_id,
        outcome_type=outcome.outcome_type,
        occurred_at=optional_timestamp(outcome.occurred_at),
        state=record_state(outcome.state),
        attributes=dict(outcome.attributes),
    )


def prices(
    currency_code: str,
    unit_prices: Mapping[str, Decimal],
    settlement_windows: Mapping[str, timedelta],
) -> list[pb.Price]:
    """Return one Price per outcome type; a window for an unpriced type is a mistake."""
    unknown = sorted(set(settlement_windows) - set(unit_prices))
    if unknown:
        raise ValueError(f"settlement_windows names outcome types without a price: {unknown}")
    return [
        pb.Price(
            outcome_type=outcome_type,
            unit_price=decimal_to_money(amount, currency_code),
            settlement_window=(
                duration(settlement_windows[outcome_type])
                if outcome_type in settlement_windows
                else None
            ),
        )
        for outcome_type, amount in unit_prices.items()
    ]


def _choose(choices: Mapping[str, _V], name: str) -> _V:
    """Return the value named ``name``, or raise ValueError listing the choices."""
    try:
        return choices[name]
    except KeyError:
        raise ValueError(f"{name!r} is not one of {', '.join(choices)}") from None


# Responses -----------------------------------------------------------------


def to_datetime(message: Timestamp) -> datetime:
    """Return a Timestamp as an aware UTC datetime."""
    return message.ToDatetime(tzinfo=UTC)


def money(message: money_pb2.Money, default_currency: str = "") -> t.Money:
    """Return a Money message as a plain Money."""
    return t.Money(money_to_decimal(message), message.currency_code or default_currency)


def enum_name(descriptor: EnumDescriptor, prefix: str, number: int) -> str:
    """Return the value's name without its prefix; an unknown value keeps its number."""
    value = descriptor.values_by_number.get(number)
    return value.name.removeprefix(prefix) if value is not None else str(number)


def outcome_recorded(message: pb.RecordOutcomeResponse) -> t.OutcomeRecorded:
    return t.OutcomeRecorded(
        ledger_sequence=message.ledger_sequence,
        unit_price=money(message.unit_price),
        units_from_buckets=message.units_from_buckets,
        charged=money(message.charged),
        rate_card_version=to_datetime(message.rate_card_version),
        state=_outcome_state(message.state),
        replayed=message.replayed,
        bucket_id=message.bucket_id or None,
        settles_at=to_datetime(message.settles_at) if message.HasField("settles_at") else None,
    )


def confirmation(message: pb.ConfirmOutcomeResponse) -> t.Confirmation:
    return t.Confirmation(
        ledger_sequence=message.ledger_sequence,
        state=_outcome_state(message.state),
        replayed=message.replayed,
    )


def reversal(message: pb.ReverseOutcomeResponse) -> t.Reversal:
    return t.Reversal(
        ledger_sequence=message.ledger_sequence,
        state=_outcome_state(message.state),
        units_returned=message.units_returned,
        refunded=money(message.refunded),
        replayed=message.replayed,
    )


def bucket_line(message: pb.BucketLine) -> t.BucketLine:
    return t.BucketLine(
        bucket_id=message.bucket_id, units=message.units, remaining=message.remaining
    )


def quote(message: pb.QuoteCostResponse) -> t.Quote:
    return t.Quote(
        unit_price=money(message.unit_price),
        units_covered=message.units_covered,
        units_billable=message.units_billable,
        total=money(message.total),
        rate_card_version=to_datetime(message.rate_card_version),
        lines=tuple(bucket_line(line) for line in message.lines),
        limit_remaining=money(message.limit_remaining)
        if message.HasField("limit_remaining")
        else None,
    )


def consumption(message: pb.ConsumeBucketResponse) -> t.Consumption:
    return t.Consumption(
        consumed=message.consumed,
        lines=tuple(bucket_line(line) for line in message.lines),
        remaining_total=message.remaining_total,
        ledger_sequence=message.ledger_sequence,
        replayed=message.replayed,
    )


def bucket(message: pb.Bucket) -> t.Bucket:
    return t.Bucket(
        bucket_id=message.bucket_id,
        outcome_type=message.outcome_type,
        quantity=message.quantity,
        remaining=message.remaining,
        held=message.held,
        valid_from=to_datetime(message.valid_from),
        valid_until=to_datetime(message.valid_until),
        unit_price=money(message.unit_price),
        source=enum_name(pb.BucketSource.DESCRIPTOR, "BUCKET_SOURCE_", message.source),
        status=enum_name(pb.BucketStatus.DESCRIPTOR, "BUCKET_STATUS_", message.status),
        priority=message.priority,
        replayed=message.replayed,
        ledger_sequence=message.ledger_sequence,
        projected_exhaustion=to_datetime(message.projected_exhaustion)
        if message.HasField("projected_exhaustion")
        else None,
    )


def balance(message: pb.GetBalanceResponse) -> t.Balance:
    return t.Balance(
        buckets=tuple(bucket(item) for item in message.buckets),
        period_start=to_datetime(message.period_start),
        period_outcomes=message.period_outcomes,
        period_charged=money(message.period_charged),
        pending_outcomes=message.pending_outcomes,
        pending_charge=money(message.pending_charge),
        ledger_sequence=message.ledger_sequence,
        projected_period_outcomes=message.forecast.projected_period_outcomes,
        projected_period_charge=money(message.forecast.projected_period_charge),
    )


def ledger_entry(message: pb.LedgerEntry) -> t.LedgerEntry:
    return t.LedgerEntry(
        sequence=message.sequence,
        transaction_id=message.transaction_id,
        kind=enum_name(pb.LedgerEntryKind.DESCRIPTOR, "LEDGER_ENTRY_KIND_", message.kind),
        customer_id=message.customer_id,
        outcome_id=message.outcome_id or None,
        request_id=message.request_id or None,
        bucket_id=message.bucket_id or None,
        outcome_type=message.outcome_type or None,
        units=message.units,
        amount=money(message.amount),
        occurred_at=to_datetime(message.occurred_at),
        recorded_at=to_datetime(message.recorded_at),
        postings=tuple(
            t.Posting(account=p.account, asset=p.asset, amount=Decimal(p.amount))
            for p in message.postings
        ),
        hash=message.hash,
    )


def customer(message: pb.PutCustomerResponse) -> t.Customer:
    stored = message.customer
    return t.Customer(
        customer_id=stored.customer_id,
        stripe_customer_id=stored.stripe_customer_id or None,
        rate_card_id=stored.rate_card_id,
        create_time=to_datetime(stored.create_time),
        update_time=to_datetime(stored.update_time),
        replayed=message.replayed,
    )


def rate_card_version(message: pb.PutRateCardResponse) -> t.RateCardVersion:
    version = message.version
    return t.RateCardVersion(
        rate_card_id=version.rate_card_id,
        effective_from=to_datetime(version.effective_from),
        currency_code=version.currency_code,
        prices=tuple(
            t.Price(
                outcome_type=price.outcome_type,
                # A price's own currency may be left empty: it is the card's.
                unit_price=money(price.unit_price, version.currency_code),
                settlement_window=(
                    price.settlement_window.ToTimedelta()
                    if price.HasField("settlement_window")
                    else DEFAULT_SETTLEMENT_WINDOW
                ),
            )
            for price in version.prices
        ),
        replayed=message.replayed,
    )


def _outcome_state(number: int) -> str:
    return enum_name(pb.OutcomeState.DESCRIPTOR, "OUTCOME_STATE_", number)


def bucket_void(message: pb.VoidBucketResponse) -> t.BucketVoid:
    return t.BucketVoid(
        bucket=bucket(message.bucket),
        units_expired=message.units_expired,
        ledger_sequence=message.ledger_sequence,
        void_time=to_datetime(message.void_time),
        replayed=message.replayed,
    )


def spend_controls(message: pb.PutSpendControlsResponse) -> t.SpendControls:
    controls = message.spend_controls
    return t.SpendControls(
        customer_id=controls.customer_id,
        alert_thresholds=tuple(money(m) for m in controls.alert_thresholds),
        hard_limit=money(controls.hard_limit) if controls.HasField("hard_limit") else None,
        update_time=to_datetime(controls.update_time),
        replayed=message.replayed,
    )


def alert(message: pb.WatchAlertsResponse) -> t.Alert:
    return t.Alert(
        alert_id=message.alert_id,
        customer_id=message.customer_id,
        period_start=to_datetime(message.period_start),
        threshold=money(message.threshold),
        period_charged=money(message.period_charged),
        crossed_at=to_datetime(message.crossed_at),
    )


def _optional_time(owner: Message, name: str) -> datetime | None:
    return to_datetime(getattr(owner, name)) if owner.HasField(name) else None


def explanation(message: pb.ExplainOutcomeResponse) -> t.OutcomeExplanation:
    used = message.buckets[0] if message.buckets else None
    return t.OutcomeExplanation(
        customer_id=message.customer_id,
        outcome_id=message.outcome_id,
        outcome_type=message.outcome_type,
        occurred_at=to_datetime(message.occurred_at),
        attributes=dict(message.attributes),
        state=_outcome_state(message.state),
        rate_card_id=message.rate_card_id,
        rate_card_version=to_datetime(message.rate_card_version),
        unit_price=money(message.unit_price),
        charged=money(message.charged),
        bucket=None if used is None else bucket(used.bucket),
        bucket_use=None
        if used is None
        else enum_name(pb.BucketUse.DESCRIPTOR, "BUCKET_USE_", used.use),
        history=tuple(
            t.HistoryStep(
                step=enum_name(pb.OutcomeStep.DESCRIPTOR, "OUTCOME_STEP_", s.step),
                at=to_datetime(s.at),
                recorded_at=to_datetime(s.recorded_at),
                ledger_sequence=s.ledger_sequence,
                period_start=_optional_time(s, "period_start"),
            )
            for s in message.history
        ),
        entries=tuple(ledger_entry(e) for e in message.entries),
        stripe_customer_id=message.stripe.stripe_customer_id,
        meter_events=tuple(
            t.MeterEventReport(
                identifier=e.identifier,
                event_name=e.event_name,
                value=e.value,
                window_start=to_datetime(e.window_start),
                first_sequence=e.first_sequence,
                last_sequence=e.last_sequence,
                state=enum_name(pb.MeterEventState.DESCRIPTOR, "METER_EVENT_STATE_", e.state),
                sent_at=_optional_time(e, "sent_at"),
            )
            for e in message.stripe.meter_events
        ),
        credit_grant_ids={g.bucket_id: g.credit_grant_id for g in message.stripe.credit_grants},
    )


def invoice(message: pb.PreviewInvoiceResponse) -> t.InvoicePreview:
    return t.InvoicePreview(
        customer_id=message.customer_id,
        period_start=to_datetime(message.period_start),
        period_end=to_datetime(message.period_end),
        lines=tuple(
            t.InvoiceLine(
                outcome_type=line.outcome_type,
                unit_price=money(line.unit_price),
                settled=line.settled,
                reversed=line.reversed,
                net=line.net,
                covered=line.covered,
                billable=line.billable,
                amount=money(line.amount),
            )
            for line in message.lines
        ),
        credits=money(message.credits),
        total=money(message.total),
        pending_outcomes=message.pending_outcomes,
        pending_charge=money(message.pending_charge),
        meters={m.event_name: (m.planned, m.sent, m.debt, m.credited) for m in message.meters},
    )


def simulation(message: pb.SimulateRateCardResponse) -> t.Simulation:
    return t.Simulation(
        period_start=to_datetime(message.period_start),
        customers=tuple(
            t.SimulatedCustomer(
                customer_id=c.customer_id,
                billable_outcomes=c.billable_outcomes,
                actual=money(c.actual),
                simulated=money(c.simulated),
                difference=money(c.difference),
            )
            for c in message.customers
        ),
        actual_total=money(message.actual_total),
        simulated_total=money(message.simulated_total),
        difference_total=money(message.difference_total),
    )
