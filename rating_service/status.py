"""An operator's view of customers (``rating-service status``): what they hold, owe and await.

It puts side by side what otherwise takes three tools: the buckets and this month's usage
(``GetBalance``), what is pending, and how far Stripe trails the ledger (the reporter's
outbox). Read-only; each customer's figures come from one snapshot of the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rating_service.domain.buckets import Bucket
from rating_service.domain.commands import GetBalance
from rating_service.domain.money import Money
from rating_service.domain.results import Balance
from rating_service.ledger import outbox
from rating_service.service.store import LedgerStore


@dataclass(frozen=True)
class CustomerStatus:
    balance: Balance
    reporting: outbox.ReportingStanding


async def customer_statuses(
    store: LedgerStore, customer_id: str | None, now: datetime
) -> list[CustomerStatus]:
    """Every customer's status, or one's (an unknown id gives an empty list)."""
    standings = await store.read(lambda conn: outbox.reporting_standing(conn, customer_id))
    return [
        CustomerStatus(await store.get_balance(GetBalance(s.customer_id), now), s)
        for s in standings
    ]


def as_text(statuses: Sequence[CustomerStatus], now: datetime) -> str:
    """A few lines per customer, for a terminal."""
    lines: list[str] = []
    for status in statuses:
        balance, reporting = status.balance, status.reporting
        stripe = reporting.stripe_customer_id or "no Stripe customer id: usage waits"
        lines.append(f"customer {reporting.customer_id} ({stripe})")
        lines.append(
            f"  {balance.period_start:%Y-%m}: {balance.period_outcomes} outcomes, "
            f"{balance.period_charged} charged; pending {balance.pending_outcomes} outcomes, "
            f"{balance.pending_charge}"
        )
        for bucket in balance.buckets:
            lines.append(
                f"  bucket {bucket.bucket_id} ({bucket.outcome_type}, "
                f"{bucket.status(now).value.lower()}): {bucket.remaining} of {bucket.quantity} "
                f"left, {bucket.held} held, valid {bucket.valid_from:%Y-%m-%d} to "
                f"{bucket.valid_until:%Y-%m-%d}"
            )
        lines.append(
            f"  reporter: {reporting.entries_unplanned} entries to plan"
            f"{_age(reporting.oldest_unplanned_at, now)}, {reporting.events_unsent} meter "
            f"events to send{_age(reporting.oldest_unsent_at, now)}"
        )
        if reporting.parked_error is not None:
            lines.append(f"  PARKED since {_iso(reporting.parked_at)}: {reporting.parked_error}")
    return "\n".join(lines) if lines else "no customers"


def as_json(statuses: Sequence[CustomerStatus], now: datetime) -> str:
    """One JSON document for scripts: amounts as exact decimal strings with their currency."""
    return json.dumps(
        {"at": _iso(now), "customers": [_customer_json(s, now) for s in statuses]}, indent=2
    )


def _customer_json(status: CustomerStatus, now: datetime) -> dict[str, object]:
    balance, reporting = status.balance, status.reporting
    return {
        "customer_id": reporting.customer_id,
        "stripe_customer_id": reporting.stripe_customer_id,
        "period_start": _iso(balance.period_start),
        "period_outcomes": balance.period_outcomes,
        "period_charged": _money(balance.period_charged),
        "pending_outcomes": balance.pending_outcomes,
        "pending_charge": _money(balance.pending_charge),
        "ledger_sequence": balance.ledger_sequence,
        "buckets": [_bucket_json(b, now) for b in balance.buckets],
        "reporter": {
            "entries_unplanned": reporting.entries_unplanned,
            "oldest_unplanned_at": _iso(reporting.oldest_unplanned_at),
            "events_unsent": reporting.events_unsent,
            "oldest_unsent_at": _iso(reporting.oldest_unsent_at),
            "parked_error": reporting.parked_error,
            "parked_at": _iso(reporting.parked_at),
        },
    }


def _bucket_json(bucket: Bucket, now: datetime) -> dict[str, object]:
    return {
        "bucket_id": bucket.bucket_id,
        "outcome_type": bucket.outcome_type,
        "status": bucket.status(now).value,
        "quantity": bucket.quantity,
        "remaining": bucket.remaining,
        "held": bucket.held,
        "valid_from": _iso(bucket.valid_from),
        "valid_until": _iso(bucket.valid_until),
        "unit_price": _money(bucket.unit_price),
    }


def _money(money: Money) -> dict[str, str]:
    return {"currency": money.currency, "amount": f"{money.amount:f}"}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    return f" (oldest {max(0, int((now - since).total_seconds()))} s)"
