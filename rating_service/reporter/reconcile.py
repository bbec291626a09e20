"""Reconciliation: Stripe's meter totals, bills and credit grants, set against the ledger.

Per customer, meter and month, in **units**: Stripe's meter total minus the
units credited back must equal the ledger's net settled outcomes
(domain/usage.py: a closed month's reversals Stripe could not take out are
credit grants); in a month still open, a debt not yet paid off is not drift
(usage or the month's close will settle it).

Per customer and month, in **money**: the bill Stripe builds from what it was
sent (each meter's total at the meter's price at the month's end, less the
owed-back credits of the month, less what the bucket grants pay for the
month's covered outcomes) must equal the ledger's (``usage:<month>:charged``),
to the minor unit. Units that agree while money does not mean a price Stripe
cannot follow (a rate card changed mid-month, or during a bucket's life, so its
grant pays another price per covered outcome than Stripe meters it at).

Per bucket, in **credits**: the current grant must be live and worth the
bucket's value (its units less manual draws and what a void expired,
domain/grants.py, at what Stripe meters a covered outcome at: outbox
``GrantPrices``), older versions voided, and its
remaining balance (``credit_balance_summary``) no more than that value (less
is invoices applying it). Every month's owed-back credit must exist with its
amount.

Usage sent after Stripe's 35 days is stamped into a later month there
(``domain.usage.stripe_timestamp``): it is expected in that month, and listed
as a notice (not drift): the ledger's month shows it, Stripe's later invoice
bills it. Usage still waiting to be sent is a difference with a note.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

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
KINDS = ("usage", "money", "grant")


@dataclass(frozen=True)
class Difference:
    customer_id: str
    kind: str  # "usage", "money", "grant"; "late" for a notice
    subject: str  # "resolution 2026-11", "2026-11" or a bucket id
    ledger: str
    stripe: str
    note: str = ""


@dataclass(frozen=True)
class Reconciliation:
    differences: tuple[Difference, ...]
    usage_checked: int
    grants_checked: int
    backlog: int
    months_checked: int = 0
    notices: tuple[Difference, ...] = ()
    """Not drift, shown: usage Stripe counts in a later month than the ledger."""

    @property
    def ok(self) -> bool:
        return not self.differences


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """``[start of the month, min(end of the month, now))``; the gateway widens it to whole minutes."""
    year, month = (int(x) for x in period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = start + timedelta(days=calendar.monthrange(year, month)[1])
    return start, min(end, now)


@dataclass(frozen=True)
class _Usage:
    """One usage row checked: what Stripe should hold and holds, and the month's open debt."""

    row: outbox.PeriodUsage
    expected: int
    stripe: int | None
    open_debt: int


async def reconcile(
    store: LedgerStore, gateway: Gateway, settings: ReporterSettings, now: datetime
) -> Reconciliation:
    differences: list[Difference] = []
    notices: list[Difference] = []
    usage = await store.read(lambda c: outbox.usage_by_period(c, settings.meters))
    checked = await _check_usage(usage, gateway, settings, now, differences, notices)
    owed = await store.read(outbox.owed_credits)
    months = await _check_money(store, checked, owed, settings, differences)
    grants = await store.read(outbox.bucket_grants)
    views: dict[str, dict[str, CreditGrantView]] = {}
    await _check_grants(grants, gateway, views, differences)
    await _check_owed(owed, gateway, views, differences)
    for kind in KINDS:
        DRIFT.labels(kind).set(sum(1 for d in differences if d.kind == kind))
    return Reconciliation(
        tuple(differences),
        len(usage),
        len(grants) + len(owed),
        sum(u.unsent for u in usage),
        months,
        tuple(notices),
    )


async def _check_usage(
    usage: Sequence[outbox.PeriodUsage],
    gateway: Gateway,
    settings: ReporterSettings,
    now: datetime,
    differences: list[Difference],
    notices: list[Difference],
) -> list[_Usage]:
    meters = await gateway.meter_ids() if usage else {}
    checked = []
    for u in usage:
        open_month = month_closes_at(u.period, settings.month_close_grace) > now
        open_debt = u.debt if open_month else 0
        moved_in = sum(u.moved_in.values())
        expected = u.ledger_net + u.credited + open_debt - u.moved_out + moved_in
        subject = f"{u.event_name} {u.period}"
        for earlier, units in sorted(u.moved_in.items()):
            notices.append(
                Difference(
                    u.customer_id,
                    "late",
                    f"{u.event_name} {earlier}",
                    f"{units} in {earlier}",
                    f"{units} in {u.period}",
                    "sent after Stripe's 35 days: billed on a later invoice",
                )
            )
        meter_id = meters.get(u.event_name)
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
            checked.append(_Usage(u, expected, None, open_debt))
            continue
        start, end = period_bounds(u.period, now)
        stripe_total = (
            await gateway.meter_total(meter_id, u.stripe_customer_id, start, end)
            if end > start
            else 0
        )
        checked.append(_Usage(u, expected, stripe_total, open_debt))
        if stripe_total != expected:
            note = f"{u.unsent} planned, not yet sent" if u.unsent else ""
            if u.planned - u.debt != u.ledger_net - u.moved_out + moved_in:
                note = (note + "; " if note else "") + "ledger entries not yet planned"
            if u.debt and not open_month:
                note = (note + "; " if note else "") + f"{u.debt} owed back, not yet credited"
            differences.append(
                Difference(u.customer_id, "usage", subject, str(expected), str(stripe_total), note)
            )
    return checked


async def _check_money(
    store: LedgerStore,
    checked: Sequence[_Usage],
    owed: Sequence[outbox.OwedCredit],
    settings: ReporterSettings,
    differences: list[Difference],
) -> int:
    """Per customer and month: Stripe's bill, as built from what it holds, against the ledger's.

    Both sides are taken to the minor unit at the end. The ledger's side adds
    what Stripe is rightly meant to bill differently in the month (an open
    month's debt, late usage moved in or out), at the meter's price.
    """
    months: dict[tuple[str, str], list[_Usage]] = {}
    for c in checked:
        months.setdefault((c.row.customer_id, c.row.period), []).append(c)
    credited: dict[tuple[str, str], dict[str, int]] = {}
    for o in owed:
        per = credited.setdefault((o.customer_id, o.period), {})
        per[o.currency] = per.get(o.currency, 0) + o.unit_price_nanos * o.units
    for (customer_id, period), rows in months.items():
        if any(c.stripe is None for c in rows):
            continue  # a missing meter is already a difference
        bill = await store.read(
            partial(
                outbox.month_bill,
                customer_id=customer_id,
                period=period,
                event_names=[c.row.event_name for c in rows],
                meters=settings.meters,
            )
        )
        stripe: dict[str, int] = {}
        ledger: dict[str, int] = dict(bill.charged_nanos)
        for c in rows:
            price, currency = bill.meter_prices[c.row.event_name]
            stripe[currency] = stripe.get(currency, 0) + (c.stripe or 0) * price
            shifted = c.open_debt + sum(c.row.moved_in.values()) - c.row.moved_out
            ledger[currency] = ledger.get(currency, 0) + shifted * price
        for currency, nanos in credited.get((customer_id, period), {}).items():
            stripe[currency] = stripe.get(currency, 0) - nanos
        for currency, nanos in bill.covered_nanos.items():
            stripe[currency] = stripe.get(currency, 0) - nanos
        for currency in sorted(set(stripe) | set(ledger)):
            theirs = minor_units(stripe.get(currency, 0), currency)
            ours = minor_units(ledger.get(currency, 0), currency)
            if theirs != ours:
                differences.append(
                    Difference(
                        customer_id,
                        "money",
                        period,
                        _money(ours, currency),
                        _money(theirs, currency),
                        _money_note(rows, bill, currency),
                    )
                )
    return len(months)


def _money(minor: int, currency: str) -> str:
    return f"{minor} {currency.lower()}"


def _money_note(rows: Sequence[_Usage], bill: outbox.MonthBill, currency: str) -> str:
    """How Stripe's side was built, so the row explains itself."""
    parts = [
        f"{c.stripe} x {minor_units(bill.meter_prices[c.row.event_name][0], currency)}"
        for c in rows
        if bill.meter_prices[c.row.event_name][1] == currency
    ]
    covered = minor_units(bill.covered_nanos.get(currency, 0), currency)
    return f"Stripe: {' + '.join(parts) or '0'} less {covered} covered by buckets"


async def _grant_views(
    gateway: Gateway, views: dict[str, dict[str, CreditGrantView]], stripe_customer_id: str
) -> dict[str, CreditGrantView]:
    if stripe_customer_id not in views:
        views[stripe_customer_id] = {
            v.grant_id: v for v in await gateway.credit_grants(stripe_customer_id)
        }
    return views[stripe_customer_id]


async def _check_grants(
    grants: Sequence[outbox.BucketGrant],
    gateway: Gateway,
    views: dict[str, dict[str, CreditGrantView]],
    differences: list[Difference],
) -> None:
    for g in grants:
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
        by_id = await _grant_views(gateway, views, g.stripe_customer_id)
        older = [
            v
            for v in by_id.values()
            if not v.voided
            and v.grant_id != g.grant_id
            and v.metadata.get("bucket_id") == g.bucket_id
            and v.metadata.get("rating_customer_id") == g.customer_id
        ]
        amount = minor_units(g.amount_nanos, g.currency)
        wanted = f"{amount} {g.currency.lower()} until {g.valid_until:%Y-%m-%dT%H:%M:%SZ}"
        if older:
            differences.append(
                Difference(
                    g.customer_id,
                    "grant",
                    g.bucket_id,
                    wanted if g.grant_id else "no grant",
                    " + ".join(f"{v.amount_minor} {v.currency}" for v in older) + " older",
                    "being replaced" if g.stale else "an older grant of the bucket is live",
                )
            )
        if g.grant_id == "":
            continue  # worth nothing: no grant of its own
        view = by_id.get(g.grant_id)
        if view is None:
            differences.append(Difference(g.customer_id, "grant", g.bucket_id, wanted, "missing"))
            continue
        expires = f"{view.expires_at:%Y-%m-%dT%H:%M:%SZ}" if view.expires_at else "never"
        got = f"{view.amount_minor} {view.currency} until {expires}"
        if got != wanted or view.voided:
            note = "voided in Stripe" if view.voided else ""
            differences.append(Difference(g.customer_id, "grant", g.bucket_id, wanted, got, note))
            continue
        balance = await gateway.credit_balance(g.stripe_customer_id, g.grant_id)
        if balance > amount:
            differences.append(
                Difference(
                    g.customer_id,
                    "grant",
                    g.bucket_id,
                    wanted,
                    f"balance {balance} {view.currency}",
                    "Stripe would credit more than the bucket is worth",
                )
            )


async def _check_owed(
    owed: Sequence[outbox.OwedCredit],
    gateway: Gateway,
    views: dict[str, dict[str, CreditGrantView]],
    differences: list[Difference],
) -> None:
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
        view = (await _grant_views(gateway, views, o.stripe_customer_id)).get(o.grant_id)
        got = "missing" if view is None else f"{view.amount_minor} {view.currency}"
        if got != wanted or (view is not None and view.voided):
            note = "voided in Stripe" if view is not None and view.voided else ""
            differences.append(Difference(o.customer_id, "grant", subject, wanted, got, note))


def format_table(result: Reconciliation) -> str:
    header = ("customer", "kind", "subject", "ledger", "stripe", "note")
    shown = [*result.differences, *result.notices]
    rows = [header] + [
        (d.customer_id, d.kind, d.subject, d.ledger, d.stripe, d.note) for d in shown
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    verdict = "no differences" if result.ok else f"{len(result.differences)} differences"
    if result.notices:
        verdict += f"; {len(result.notices)} late (not drift)"
    summary = (
        f"reconcile: {result.usage_checked} customer-periods and {result.grants_checked} "
        f"buckets checked; {verdict} (in money too: {result.months_checked} customer-months)"
    )
    return "\n".join([*lines, summary] if shown else [summary])
