"""Reconciliation: Stripe's meter totals and credit grants, set against the ledger.

Per customer, meter and period, Stripe's event summaries minus the units
credited back must equal the ledger's net settled outcomes (domain/usage.py:
a closed month's reversals Stripe could not take out are credit grants); in a
month still open, a debt not yet paid off is not drift (usage or the month's
close will settle it). Every credit grant (a bucket's, a month's owed-back
credit) must exist with its value and validity. Usage still waiting to be
sent is not drift; it is shown as a backlog.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge

from rating_service.domain.usage import month_closes_at
from rating_service.ledger import outbox
from rating_service.reporter.currency import minor_units
from rating_service.reporter.gateway import CreditGrantView, Gateway
from rating_service.reporter.settings import ReporterSettings
from rating_service.service.store import LedgerStore

DRIFT = Gauge(
    "rating_stripe_drift",
    "Differences between Stripe and the ledger at the last reconciliation",
    ["kind"],
)


@dataclass(frozen=True)
class Difference:
    customer_id: str
    kind: str  # "usage" or "grant"
    subject: str  # "resolution 2026-11" or a bucket id
    ledger: str
    stripe: str
    note: str = ""


@dataclass(frozen=True)
class Reconciliation:
    differences: tuple[Difference, ...]
    usage_checked: int
    grants_checked: int
    backlog: int

    @property
    def ok(self) -> bool:
        return not self.differences


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """``[start of the month, min(end of the month, now))``; the gateway widens it to whole minutes."""
    year, month = (int(x) for x in period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = start + timedelta(days=calendar.monthrange(year, month)[1])
    return start, min(end, now)


async def reconcile(
    store: LedgerStore, gateway: Gateway, settings: ReporterSettings, now: datetime
) -> Reconciliation:
    differences: list[Difference] = []
    usage = await store.read(lambda c: outbox.usage_by_period(c, settings.meters))
    meters = await gateway.meter_ids() if usage else {}
    backlog = 0
    for u in usage:
        backlog += u.unsent
        open_month = month_closes_at(u.period, settings.month_close_grace) > now
        expected = u.ledger_net + u.credited + (u.debt if open_month else 0)
        meter_id = meters.get(u.event_name)
        subject = f"{u.event_name} {u.period}"
        if meter_id is None:
            differences.append(
                Difference(
                    u.customer_id,
                    "usage",
                    subject,
                    str(expected),
                    "no meter",
                    "run `rating-service stripe setup`",
                )
            )
            continue
        start, end = period_bounds(u.period, now)
        stripe_total = (
            await gateway.meter_total(meter_id, u.stripe_customer_id, start, end)
            if end > start
            else 0
        )
        if stripe_total != expected:
            note = f"{u.unsent} planned, not yet sent" if u.unsent else ""
            if u.planned - u.debt != u.ledger_net:
                note = (note + "; " if note else "") + "ledger entries not yet planned"
            if u.debt and not open_month:
                note = (note + "; " if note else "") + f"{u.debt} owed back, not yet credited"
            differences.append(
                Difference(u.customer_id, "usage", subject, str(expected), str(stripe_total), note)
            )
    grants = await store.read(outbox.bucket_grants)
    by_customer: dict[str, dict[str, CreditGrantView]] = {}
    for g in grants:
        if g.grant_id == "":
            continue  # a bucket worth nothing needs no grant
        if g.grant_id is None:
            differences.append(
                Difference(
                    g.customer_id,
                    "grant",
                    g.bucket_id,
                    "bucket",
                    "no grant yet",
                    "not yet reported",
                )
            )
            continue
        if g.stripe_customer_id not in by_customer:
            by_customer[g.stripe_customer_id] = {
                v.grant_id: v for v in await gateway.credit_grants(g.stripe_customer_id)
            }
        view = by_customer[g.stripe_customer_id].get(g.grant_id)
        amount = minor_units(g.amount_nanos, g.currency)
        wanted = f"{amount} {g.currency.lower()} until {g.valid_until:%Y-%m-%dT%H:%M:%SZ}"
        if view is None:
            differences.append(Difference(g.customer_id, "grant", g.bucket_id, wanted, "missing"))
            continue
        expires = f"{view.expires_at:%Y-%m-%dT%H:%M:%SZ}" if view.expires_at else "never"
        got = f"{view.amount_minor} {view.currency} until {expires}"
        if got != wanted or view.voided:
            note = "voided in Stripe" if view.voided else ""
            differences.append(Difference(g.customer_id, "grant", g.bucket_id, wanted, got, note))
    owed = await store.read(outbox.owed_credits)
    for o in owed:
        if o.grant_id == "":
            continue  # worth nothing: no grant
        subject = f"owed back {o.event_name} {o.period} #{o.number}"
        amount = minor_units(o.unit_price_nanos * o.units, o.currency)
        wanted = f"{amount} {o.currency.lower()}"
        if o.grant_id is None:
            differences.append(
                Difference(
                    o.customer_id, "grant", subject, wanted, "no grant yet", "not yet reported"
                )
            )
            continue
        if o.stripe_customer_id not in by_customer:
            by_customer[o.stripe_customer_id] = {
                v.grant_id: v for v in await gateway.credit_grants(o.stripe_customer_id)
            }
        view = by_customer[o.stripe_customer_id].get(o.grant_id)
        got = "missing" if view is None else f"{view.amount_minor} {view.currency}"
        if got != wanted or (view is not None and view.voided):
            note = "voided in Stripe" if view is not None and view.voided else ""
            differences.append(Difference(o.customer_id, "grant", subject, wanted, got, note))
    for kind in ("usage", "grant"):
        DRIFT.labels(kind).set(sum(1 for d in differences if d.kind == kind))
    return Reconciliation(tuple(differences), len(usage), len(grants) + len(owed), backlog)


def format_table(result: Reconciliation) -> str:
    header = ("customer", "kind", "subject", "ledger", "stripe", "note")
    rows = [header] + [
        (d.customer_id, d.kind, d.subject, d.ledger, d.stripe, d.note) for d in result.differences
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    verdict = "no differences" if result.ok else f"{len(result.differences)} differences"
    summary = (
        f"reconcile: {result.usage_checked} customer-periods and {result.grants_checked} buckets "
        f"checked; {verdict}"
    )
    return "\n".join([*lines, summary] if result.differences else [summary])
