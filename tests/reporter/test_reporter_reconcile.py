"""``rating-service reconcile``: exit 0 while Stripe holds what the ledger says, exit 1 with
the table rows of the customer (units and money) once Stripe's side is changed behind the
reporter's back.

A customer's usage and bucket are reported in full; then an operator (or a bug elsewhere)
sends an extra meter event for that customer straight to Stripe, or voids its credit grant
in Stripe. Reconciliation is run as an operator runs it, on the command line.
"""

from __future__ import annotations

import re

import pytest
import reporter_support as rs

from rating_service.reporter.settings import ReporterSettings
from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway
rig = rs.rig
operator = rs.operator

EXTRA = 7
"""The value of the meter event sent behind the reporter's back."""


@pytest.fixture
async def reported(rig: rs.Rig) -> rs.Reported:
    return await rs.report_one_customer(rig)


async def test_reconcile_exits_0_while_stripe_agrees_and_1_with_the_row_of_an_extra_event(
    stripe_test_server: StripeTestServer, operator: rs.Operator, reported: rs.Reported
) -> None:
    agreeing = await operator("reconcile")
    await rs.send_behind_the_reporters_back(stripe_test_server, reported.stripe_customer_id, EXTRA)

    tampered = await operator("reconcile")

    assert agreeing.code == 0, agreeing.output
    assert "1 customer-periods and 1 buckets checked; no differences" in agreeing.output
    assert tampered.code == 1, tampered.output
    customer, _, subject, ledger, stripe, *note = tampered.row(reported.customer_id, "usage")
    assert customer == reported.customer_id
    assert re.fullmatch(rf"{rs.EVENT_NAME} \d{{4}}-\d{{2}}", subject), subject
    assert (ledger, stripe) == (str(reported.outcomes), str(reported.outcomes + EXTRA))
    assert note == [], "nothing is waiting to be sent: the difference is Stripe's alone"
    # In money: the ledger bills the 20 outcomes its bucket of 10 did not cover; Stripe
    # would bill 37 metered less the bucket's 10.
    _, _, month, ledger_bill, stripe_bill, _ = tampered.row(reported.customer_id, "money")
    assert month == subject.split()[1]
    assert (ledger_bill, stripe_bill) == (
        f"{(reported.outcomes - 10) * 99} usd",
        f"{(reported.outcomes + EXTRA - 10) * 99} usd",
    )
    assert "checked; 2 differences" in tampered.output


async def test_reconcile_exits_1_with_the_row_of_a_grant_voided_in_stripe(
    stripe_test_server: StripeTestServer, operator: rs.Operator, reported: rs.Reported
) -> None:
    await rs.void_behind_the_reporters_back(stripe_test_server, reported.grant_id)

    tampered = await operator("reconcile")

    assert tampered.code == 1, tampered.output
    customer, kind, subject, ledger, stripe, *note = tampered.row(reported.customer_id)
    assert (customer, kind, subject) == (reported.customer_id, "grant", reported.bucket_id)
    assert ledger.startswith("990 usd until "), ledger
    assert "voided" in " ".join([stripe, *note]), f"the row does not say what differs: {note}"
    assert "checked; 1 differences" in tampered.output


async def test_the_drift_gauge_counts_the_usage_and_the_money_rows_of_an_extra_event(
    rig: rs.Rig, stripe_test_server: StripeTestServer, reported: rs.Reported
) -> None:
    """rating_stripe_drift{kind}: 0 while Stripe agrees; one usage and one money row after."""
    settings = ReporterSettings()
    assert (await rig.reconcile(settings)).ok
    assert [rs.metric("rating_stripe_drift", kind=k) for k in ("usage", "money", "grant")] == [
        0,
        0,
        0,
    ]
    await rs.send_behind_the_reporters_back(stripe_test_server, reported.stripe_customer_id, EXTRA)

    await rig.reconcile(settings)

    assert [rs.metric("rating_stripe_drift", kind=k) for k in ("usage", "money", "grant")] == [
        1,
        1,
        0,
    ]
