"""Spend controls: put them, hold each charge to the hard limit, raise alerts as charges cross
thresholds, and read the alerts back for watchers.

The limit and the alerts are decided in the transaction of the charge itself
(the writer serializes a customer's calls, and replicas lock the customer's
row), so concurrent calls cannot overshoot the limit and an alert is stored
exactly when the charge that crossed it is.
"""

from __future__ import annotations

from datetime import datetime

from rating_service.domain import postings as entries
from rating_service.domain.commands import PutSpendControls
from rating_service.domain.errors import InvalidArgument
from rating_service.domain.money import Money
from rating_service.domain.results import SpendControlsPut
from rating_service.domain.spend import (
    Alert,
    NewAlert,
    SpendControls,
    crossed_thresholds,
    limit_remaining,
    require_within_limit,
)
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.session import ReadSession, WriteSession
from rating_service.service.idempotency import require_same_payload


def put_controls(uow: WriteSession, cmd: PutSpendControls, now: datetime) -> SpendControlsPut:
    head = uow.customers.head(cmd.customer_id)
    fingerprint = cmd.fingerprint()
    prior = uow.spend.request(cmd.customer_id, cmd.request_id)
    if prior is not None:
        require_same_payload(prior[0], fingerprint, "request_id", cmd.request_id)
        return SpendControlsPut(cmd.customer_id, prior[1], replayed=True)
    card = uow.rate_cards.in_force(head.rate_card_id, now) or uow.rate_cards.first(
        head.rate_card_id
    )
    currency = cmd.currency
    if card is not None and currency is not None and currency != card.currency:
        field = "alert_thresholds[0]" if cmd.alert_thresholds else "hard_limit"
        raise InvalidArgument.field(
            f"{field}.currency_code",
            f"must be the customer's rate card currency {card.currency}, got {currency}",
        )
    controls = SpendControls(
        currency=currency or (card.currency if card else ""),
        alert_thresholds=tuple(sorted(t.nanos for t in cmd.alert_thresholds)),
        hard_limit=None if cmd.hard_limit is None else cmd.hard_limit.nanos,
        updated_at=now,
    )
    uow.spend.put(cmd.customer_id, cmd.request_id, fingerprint, controls)
    return SpendControlsPut(cmd.customer_id, controls, replayed=False)


def require_within_hard_limit(
    uow: WriteSession, head: CustomerHead, charge: Money, now: datetime
) -> None:
    """Refuse (SPEND_LIMIT_REACHED) a charge that would take this month past the hard limit."""
    controls = head.spend_controls
    if controls is None or controls.hard_limit is None or charge.nanos <= 0:
        return  # the hot path without a limit reads nothing
    spent = uow.spend.exposure(head.customer_id, entries.period_of(now), controls.currency)
    require_within_limit(controls, charge, spent)


def note_charge(
    uow: WriteSession, head: CustomerHead, tx: entries.Transaction, sequence: int, now: datetime
) -> None:
    """Raise the alerts whose thresholds the settled charge ``tx`` (just appended) crossed."""
    controls = head.spend_controls
    if controls is None or not controls.alert_thresholds:
        return
    period = entries.period_of(tx.occurred_at)
    account = entries.usage_charged(period)
    charge = sum(
        p.amount for p in tx.postings if p.account == account and p.asset == controls.currency
    )
    if charge <= 0:
        return
    after = uow.spend.balance(head.customer_id, account, controls.currency)
    crossed = crossed_thresholds(controls, controls.currency, after - charge, after)
    if not crossed:
        return
    fired = uow.spend.fired(head.customer_id, period, controls.currency)
    new = [
        NewAlert(
            customer_id=head.customer_id,
            period=period,
            threshold=Money(controls.currency, threshold),
            period_charged=Money(controls.currency, after),
            crossed_at=now,
        )
        for threshold in crossed
        if threshold not in fired
    ]
    uow.alerts_raised += uow.spend.raise_alerts(new, sequence)


def remaining_under_limit(uow: ReadSession, head: CustomerHead, now: datetime) -> Money | None:
    """What this month may still be charged before the hard limit (None without a limit)."""
    controls = head.spend_controls
    if controls is None or controls.hard_limit is None:
        return None
    spent = uow.spend.exposure(head.customer_id, entries.period_of(now), controls.currency)
    return limit_remaining(controls, spent)


def alerts_after(uow: ReadSession, customer_id: str, after: int, limit: int) -> list[Alert]:
    if customer_id:
        uow.customers.head(customer_id)  # CUSTOMER_NOT_FOUND for an unknown customer
    return uow.spend.alerts_after(after, customer_id, limit)
