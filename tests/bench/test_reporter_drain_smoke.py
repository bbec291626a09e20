"""The reporter-drain benchmark in quick mode: it runs end to end and its checks hold.

A few thousand outcomes through the real reporter, gateway, SDK and Stripe
test server: every customer's meter total must equal its ledger usage, usage
must travel aggregated (far fewer meter events and HTTP calls than outcomes),
and the JSON must be written where asked. Then a share of the outcomes is
reversed and drained again: the reporter cancels the meter events carrying them
(one adjustment each) and sends their replacements, and Stripe's totals equal
the ledger's usage net of the reversals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.reporter_drain import main

OUTCOMES = 5_000
CUSTOMERS = 50
REVERSE_SHARE = 0.02


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of the benchmark, its exit code under ``exit``, its JSON results."""
    tmp_path = tmp_path_factory.mktemp("reporter-drain")
    out = tmp_path / "results" / "reporter_drain.json"
    argv = ["--outcomes", str(OUTCOMES), "--customers", str(CUSTOMERS)]
    argv += ["--bare-requests", "50", "--sqlite-seconds", "0.5"]
    argv += ["--reverse-share", str(REVERSE_SHARE)]
    argv += ["--workdir", str(tmp_path / "work"), "--out", str(out)]
    code = main(argv)
    data: dict[str, Any] = json.loads(out.read_text())
    return {"exit": code, **data}


def test_quick_drain_puts_exactly_the_ledgers_usage_into_stripe(results: dict[str, Any]) -> None:
    check, drain = results["check"], results["drain"]
    assert check["ok"], check
    assert check["ledger_total"] == check["stripe_total"] == OUTCOMES
    assert check["customers_matching"] == CUSTOMERS
    assert check["stream_rejections"] == check["stream_duplicates"] == 0
    assert drain["planned_entries"] == OUTCOMES
    assert drain["http_failures"] == 0
    assert 0 < drain["meter_events_sent"] < OUTCOMES / 5, "usage was not aggregated"
    assert drain["http_by_operation"]["GetCustomersCustomer"] == CUSTOMERS
    streamed = drain["http_by_operation"]["PostV2BillingMeterEventStream"]
    assert streamed == -(-drain["meter_events_sent"] // 100), "not 100 events a request"
    assert drain["http_calls"] == sum(drain["http_by_operation"].values())


def test_reversals_drain_as_cancels_and_replacements_and_stripe_nets_them_out(
    results: dict[str, Any],
) -> None:
    reversals = results["reversals"]
    check, drain = reversals["check"], reversals["drain"]
    reversed_ = round(REVERSE_SHARE * OUTCOMES)
    assert reversals["outcomes_reversed"] == reversed_
    assert reversals["customers"] == CUSTOMERS, "reversals not spread over the customers"
    assert check["ok"], check
    assert check["ledger_total"] == check["stripe_total"] == OUTCOMES - reversed_
    assert check["customers_matching"] == CUSTOMERS
    assert check["stream_rejections"] == check["stream_duplicates"] == 0
    assert drain["planned_entries"] == reversed_
    assert drain["http_failures"] == 0
    assert 0 < drain["meter_events_cancelled"] <= reversed_
    ops = drain["http_by_operation"]
    assert ops["PostV2BillingMeterEventAdjustments"] == drain["meter_events_cancelled"]
    assert 0 < drain["meter_events_sent"] <= drain["meter_events_cancelled"], "no replacements"
    assert ops["PostV2BillingMeterEventStream"] == -(-drain["meter_events_sent"] // 100)
    assert "GetCustomersCustomer" not in ops, "verified customers were verified again"
    assert drain["http_calls"] == sum(ops.values())
    per_1000 = 1000 * ops["PostV2BillingMeterEventAdjustments"] / reversed_
    assert drain["adjustments_per_1000_reversals"] == round(per_1000, 3)


def test_the_run_exits_zero_as_both_checks_hold(results: dict[str, Any]) -> None:
    assert results["check"]["ok"]
    assert results["reversals"]["check"]["ok"]
    assert results["exit"] == 0
