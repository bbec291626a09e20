"""Reads that explain and project: an outcome's story, a month's bill, a draft's effect, a forecast.

Each is a function of a read unit of work (one snapshot) and writes nothing.
Bills, re-pricings and forecasts read the ledger's daily usage counts, kept
in step with the entries by the write path, never the entries themselves.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

from rating_service.domain import billing, explanation, forecast
from rating_service.domain import postings as entries
from rating_service.domain.buckets import Bucket, burn_down_key
from rating_service.domain.commands import (
    ExplainOutcome,
    PreviewInvoice,
    SimulateRateCard,
)
from rating_service.domain.errors import CustomerNotFound, OutcomeNotFound
from rating_service.domain.money import Money
from rating_service.ledger.session import ReadSession

_INT64_MAX = 2**63 - 1
"""What ``projected_period_outcomes`` (int64) carries."""


def explain(uow: ReadSession, cmd: ExplainOutcome) -> explanation.Explanation:
    head = uow.customers.head(cmd.customer_id)
    outcome = uow.outcomes.get(cmd.customer_id, cmd.outcome_id)
    if outcome is None:
        raise OutcomeNotFound(
            f"outcome {cmd.outcome_id!r} was never recorded for customer {cmd.customer_id!r}",
            outcome_id=cmd.outcome_id,
        )
    found = uow.history.entries_at(cmd.customer_id, explanation.outcome_sequences(outcome))
    bucket = uow.buckets.get(cmd.customer_id, outcome.bucket_id) if outcome.bucket_id else None
    grants: tuple[explanation.CreditGrant, ...] = ()
    if bucket is not None:
        grant_id, worth = uow.stripe_reports.credit_grant(cmd.customer_id, bucket.bucket_id)
        grants = (
            explanation.CreditGrant(
                bucket.bucket_id, grant_id, Money(bucket.unit_price.currency, worth)
            ),
        )
    usage = explanation.usage_sequences(outcome)
    return explanation.Explanation(
        outcome=outcome,
        attributes=json.loads(outcome.attributes),
        bucket=bucket,
        bucket_use=explanation.bucket_use(outcome),
        history=explanation.history_of(outcome, found),
        entries=tuple(found),
        stripe_customer_id=head.stripe_customer_id,
        meter_events=explanation.carrying_events(
            uow.stripe_reports.events_holding(cmd.customer_id, usage),
            usage,
            outcome.outcome_type,
        ),
        credit_grants=grants,
    )


def preview_invoice(uow: ReadSession, cmd: PreviewInvoice, now: datetime) -> billing.Invoice:
    head = uow.customers.head(cmd.customer_id)
    start = cmd.period_start or billing.month_start(now)
    end = billing.next_month(start)
    lines = billing.invoice_lines(uow.usage.days(cmd.customer_id, start, end))
    currency = _currency(uow, head.rate_card_id, now, lines)
    pending = _pending_settling_in(uow, cmd.customer_id, start, end, now)
    outcomes, nanos = pending.get(currency, (0, 0))
    return billing.Invoice(
        customer_id=cmd.customer_id,
        period_start=start,
        period_end=end,
        currency=currency,
        lines=tuple(lines),
        pending_outcomes=outcomes,
        pending_charge=Money(currency, nanos),
        meters=tuple(uow.stripe_reports.month(cmd.customer_id, entries.period_of(start))),
    )


def _pending_settling_in(
    uow: ReadSession, customer_id: str, start: datetime, end: datetime, now: datetime
) -> dict[str, tuple[int, int]]:
    """Per currency, the pending outcomes that settle within [start, end) unless reversed.

    A pending outcome settles at the end of its window, or now if that has
    passed: nothing pending counts in a month that has ended.
    """
    if end <= now:
        return {}
    before_end = uow.outcomes.pending_settling_before(customer_id, end)
    if start <= now:
        return before_end
    before_start = uow.outcomes.pending_settling_before(customer_id, start)
    return {
        currency: (
            count - before_start.get(currency, (0, 0))[0],
            nanos - before_start.get(currency, (0, 0))[1],
        )
        for currency, (count, nanos) in before_end.items()
    }


def _currency(
    uow: ReadSession, rate_card_id: str, now: datetime, lines: list[billing.InvoiceLine]
) -> str:
    """The currency a customer is billed in: its lines' when they share one, else its rate
    card's (the card's when the month's lines span two currencies, after a move to a card in
    another currency; a month without lines is billed in the card's)."""
    currencies = {line.unit_price.currency for line in lines}
    if len(currencies) == 1:
        return currencies.pop()
    version = uow.rate_cards.in_force(rate_card_id, now) or uow.rate_cards.first(rate_card_id)
    card = version.currency if version else "USD"
    return card if card in currencies or not currencies else min(currencies)


def simulate(uow: ReadSession, cmd: SimulateRateCard, now: datetime) -> billing.Simulation:
    start = cmd.period_start or billing.month_start(now)
    end = billing.next_month(start)
    if cmd.customer_ids is not None:
        missing = uow.customers.missing(cmd.customer_ids)
        if missing:
            raise CustomerNotFound(
                f"customer {missing[0]!r} does not exist", customer_id=missing[0]
            )
        customer_ids = sorted(cmd.customer_ids)
        counts = uow.usage.of_customers(customer_ids, start, end)
    else:
        assert cmd.rate_card_id is not None
        customer_ids = uow.customers.on_rate_card(cmd.rate_card_id)
        counts = uow.usage.of_rate_card(cmd.rate_card_id, start, end)
    draft = {p.outcome_type: p.unit_price for p in cmd.prices}
    simulation = billing.Simulation(
        period_start=start,
        currency=cmd.currency,
        customers=tuple(
            billing.reprice(
                customer_id,
                billing.invoice_lines(counts.get(customer_id, ())),
                draft,
                cmd.currency,
            )
            for customer_id in customer_ids
        ),
    )
    billing.require_representable(
        simulation.simulated_total,
        simulation.difference_total,
        *(c.simulated for c in simulation.customers),
        *(c.difference for c in simulation.customers),
    )
    return simulation


# ---- forecasts (GetBalance) ------------------------------------------------------------


def month_forecast(
    uow: ReadSession,
    customer_id: str,
    now: datetime,
    period_outcomes: int,
    period_charged: Money,
    buckets: tuple[Bucket, ...],
) -> tuple[int, Money, dict[str, datetime]]:
    """The month's projected outcomes and charge, and each bucket's projected exhaustion."""
    today = billing.day_of(now)
    window = uow.usage.days(customer_id, today - timedelta(days=forecast.WINDOW_DAYS), today)
    outcomes: dict[datetime, int] = defaultdict(int)
    charged: dict[datetime, int] = defaultdict(int)
    by_type: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for key, counts in window:
        outcomes[key.day] += counts.net
        by_type[key.outcome_type][key.day] += counts.net
        if key.unit_price.currency == period_charged.currency:
            charged[key.day] += key.unit_price.nanos * counts.billable
    exhaustion: dict[str, datetime] = {}
    for outcome_type in {b.outcome_type for b in buckets}:
        reserves = [
            forecast.Reserve(b.bucket_id, b.remaining, b.valid_from, b.valid_until)
            for b in sorted(buckets, key=burn_down_key)
            if b.outcome_type == outcome_type
        ]
        pace = forecast.weekday_pace(by_type.get(outcome_type, {}), today)
        exhaustion.update(forecast.project_exhaustion(reserves, pace, now))
    return (
        min(forecast.project_month(period_outcomes, outcomes, now), _INT64_MAX),
        Money(period_charged.currency, forecast.project_month(period_charged.nanos, charged, now)),
        exhaustion,
    )
