"""Reads: a quote, a balance (with its forecast), a page of the ledger. Each runs on one
snapshot, writes nothing; explanations, bills and re-pricings are in ``reports``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from rating_service.domain import postings as entries
from rating_service.domain.buckets import burn_down_key
from rating_service.domain.money import Money
from rating_service.domain.ratecard import require_version
from rating_service.domain.rating import Quote, quote
from rating_service.domain.results import Balance, Entry
from rating_service.ledger.session import ReadSession
from rating_service.service import reports
from rating_service.service.spend import remaining_under_limit


def quote_cost(
    uow: ReadSession,
    customer_id: str,
    outcome_type: str,
    quantity: int,
    at: datetime,
    now: datetime,
) -> Quote:
    head = uow.customers.head(customer_id)
    version = require_version(uow.rate_cards.in_force(head.rate_card_id, at), head.rate_card_id, at)
    found = uow.buckets.drawable(customer_id, outcome_type, at)
    priced = quote(version, found, outcome_type, quantity, at)
    remaining = remaining_under_limit(uow, head, now)
    return priced if remaining is None else dataclasses.replace(priced, limit_remaining=remaining)


def balance(uow: ReadSession, customer_id: str, now: datetime) -> Balance:
    head = uow.customers.head(customer_id)
    period = entries.period_of(now)
    accounts = [
        entries.usage_outcomes(period),
        entries.usage_charged(period),
        entries.OUTCOMES_PENDING,
        entries.CHARGES_PENDING,
    ]
    amounts = uow.history.balances(customer_id, accounts)
    all_buckets = sorted(uow.buckets.all(customer_id), key=burn_down_key)
    version = uow.rate_cards.in_force(head.rate_card_id, now) or uow.rate_cards.first(
        head.rate_card_id
    )
    currency = version.currency if version else _first_currency(amounts) or "USD"

    def total(account: str, *, money: bool) -> int:
        return sum(
            v
            for (a, asset), v in amounts.items()
            if a == account and (asset == currency if money else entries.is_unit_asset(asset))
        )

    period_outcomes = total(entries.usage_outcomes(period), money=False)
    period_charged = Money(currency, total(entries.usage_charged(period), money=True))
    projected_outcomes, projected_charge, exhaustion = reports.month_forecast(
        uow, customer_id, now, period_outcomes, period_charged, tuple(all_buckets)
    )
    return Balance(
        buckets=tuple(all_buckets),
        period_start=datetime(now.year, now.month, 1, tzinfo=UTC),
        period_outcomes=period_outcomes,
        period_charged=period_charged,
        pending_outcomes=total(entries.OUTCOMES_PENDING, money=False),
        pending_charge=Money(currency, total(entries.CHARGES_PENDING, money=True)),
        ledger_sequence=head.head_sequence,
        projected_outcomes=projected_outcomes,
        projected_charge=projected_charge,
        exhaustion=exhaustion,
    )


def list_entries(uow: ReadSession, customer_id: str, *, after: int, limit: int) -> list[Entry]:
    uow.customers.head(customer_id)  # CUSTOMER_NOT_FOUND for an unknown customer
    return uow.history.entries(customer_id, after=after, limit=limit)


def _first_currency(amounts: dict[tuple[str, str], int]) -> str | None:
    return next((asset for (_, asset) in amounts if not entries.is_unit_asset(asset)), None)
