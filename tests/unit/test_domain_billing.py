"""A month's bill from daily counts, and its re-pricing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rating_service.domain.billing import (
    Invoice,
    InvoiceLine,
    UsageCounts,
    UsageKey,
    invoice_lines,
    reprice,
    require_representable,
)
from rating_service.domain.errors import AmountOutOfRange, InvalidArgument
from rating_service.domain.money import Money

DAY_1 = datetime(2026, 11, 1, tzinfo=UTC)
DAY_2 = datetime(2026, 11, 2, tzinfo=UTC)
OLD, NEW = Money("USD", 990_000_000), Money("USD", 1_490_000_000)


def test_days_merge_into_one_line_per_type_and_price_ordered_by_both() -> None:
    lines = invoice_lines(
        [
            (UsageKey(DAY_2, "resolution", NEW), UsageCounts(4, 1, 0, 0)),
            (UsageKey(DAY_1, "resolution", OLD), UsageCounts(2, 0, 1, 0)),
            (UsageKey(DAY_2, "resolution", OLD), UsageCounts(1, 0, 0, 0)),
            (UsageKey(DAY_1, "escalation", OLD), UsageCounts(0, 0, 0, 0)),
        ]
    )
    assert lines == [
        InvoiceLine("resolution", OLD, UsageCounts(3, 0, 1, 0)),
        InvoiceLine("resolution", NEW, UsageCounts(4, 1, 0, 0)),
    ]
    assert [(line.counts.billable, line.amount, line.credit) for line in lines] == [
        (2, Money("USD", 1_980_000_000), OLD),
        (3, Money("USD", 4_470_000_000), Money.zero("USD")),
    ]


def test_a_month_in_two_currencies_totals_the_invoice_currency_and_keeps_the_other_lines() -> None:
    """A customer moved mid-month from an IDR card to a USD one (found by the fuzz suite:
    the total added IDR to USD and the call answered INTERNAL)."""
    rupiah = Money("IDR", 16_000 * 10**9)
    lines = (
        InvoiceLine("resolution", rupiah, UsageCounts(2, 0, 1, 0)),
        InvoiceLine("resolution", OLD, UsageCounts(3, 0, 0, 0)),
    )
    invoice = Invoice("acme", DAY_1, DAY_2, "USD", lines, 0, Money.zero("USD"), ())

    assert (invoice.total, invoice.credits) == (Money("USD", 2_970_000_000), Money.zero("USD"))
    assert [line.amount for line in invoice.lines] == [rupiah, Money("USD", 2_970_000_000)]


def test_repricing_keeps_the_billable_count_and_applies_the_draft_per_type() -> None:
    lines = [
        InvoiceLine("resolution", OLD, UsageCounts(3, 0, 1, 0)),
        InvoiceLine("resolution", NEW, UsageCounts(4, 1, 0, 0)),
        InvoiceLine("escalation", NEW, UsageCounts(1, 0, 0, 0)),
    ]
    repriced = reprice("acme", lines, {"resolution": Money("USD", 2_000_000_000)}, "USD")
    assert repriced.billable_outcomes == 6
    assert repriced.actual == Money("USD", 1_980_000_000 + 4_470_000_000 + 1_490_000_000)
    assert repriced.simulated == Money("USD", 5 * 2_000_000_000 + 1_490_000_000)
    assert repriced.difference == repriced.simulated + -repriced.actual


def test_repricing_a_month_billed_in_another_currency_names_currency_code() -> None:
    lines = [InvoiceLine("resolution", Money("EUR", 1), UsageCounts(1, 0, 0, 0))]
    with pytest.raises(InvalidArgument) as raised:
        reprice("acme", lines, {}, "USD")
    assert [v.field for v in raised.value.violations] == ["currency_code"]


def test_an_amount_no_money_message_can_carry_is_amount_out_of_range() -> None:
    require_representable(Money("USD", (2**63 - 1) * 10**9))
    with pytest.raises(AmountOutOfRange):
        require_representable(Money("USD", -(2**63) * 10**9))
