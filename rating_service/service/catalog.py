"""Customers and rate cards: what outcomes are priced with."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rating_service.domain.commands import PutCustomer, PutRateCard
from rating_service.domain.instants import EARLIEST
from rating_service.domain.ratecard import RateCardVersion
from rating_service.domain.results import Customer, CustomerPut, RateCardPut
from rating_service.ledger.repositories.customers import customer_of
from rating_service.ledger.session import WriteSession
from rating_service.service.idempotency import reused


def put_customer(uow: WriteSession, cmd: PutCustomer, now: datetime) -> CustomerPut:
    head = uow.customers.find(cmd.customer_id)
    if head is None:
        customer = Customer(cmd.customer_id, cmd.stripe_customer_id, cmd.rate_card_id, now, now)
        uow.customers.add(customer)
        return CustomerPut(customer, replayed=False)
    stored = customer_of(head)
    if (stored.stripe_customer_id, stored.rate_card_id) == (
        cmd.stripe_customer_id,
        cmd.rate_card_id,
    ):
        return CustomerPut(stored, replayed=True)
    customer = replace(
        stored,
        stripe_customer_id=cmd.stripe_customer_id,
        rate_card_id=cmd.rate_card_id,
        updated_at=now,
    )
    uow.customers.update(customer)
    return CustomerPut(customer, replayed=False)


def put_rate_card(uow: WriteSession, cmd: PutRateCard, now: datetime) -> RateCardPut:
    prices = {p.outcome_type: p for p in cmd.prices}
    effective_from = cmd.effective_from
    if effective_from is None:
        in_force = uow.rate_cards.in_force(cmd.rate_card_id, now)
        effective_from = now if in_force else EARLIEST
        candidate = RateCardVersion(cmd.rate_card_id, effective_from, cmd.currency, prices)
        if in_force is not None and in_force.same_prices(candidate):
            return RateCardPut(in_force, replayed=True)
    version = RateCardVersion(cmd.rate_card_id, effective_from, cmd.currency, prices)
    stored = uow.rate_cards.at(cmd.rate_card_id, effective_from)
    if stored is not None:
        if not stored.same_prices(version):
            raise reused(
                "(rate_card_id, effective_from)",
                f"{cmd.rate_card_id}@{effective_from.isoformat()}",
            )
        return RateCardPut(stored, replayed=True)
    uow.rate_cards.add(version, now)
    return RateCardPut(version, replayed=False)
