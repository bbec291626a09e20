"""The reporter-drain benchmark in quick mode: it runs end to end and its check holds.

A few thousand outcomes through the real reporter, gateway, SDK and Stripe
test server: every customer's meter total must equal its ledger usage, usage
must travel aggregated (far fewer meter events and HTTP calls than outcomes),
and the JSON must be written where asked.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.reporter_drain import main

OUTCOMES = 5_000
CUSTOMERS = 50


def test_quick_drain_puts_exactly_the_ledgers_usage_into_stripe(tmp_path: Path) -> None:
    out = tmp_path / "results" / "reporter_drain.json"
    argv = ["--outcomes", str(OUTCOMES), "--customers", str(CUSTOMERS)]
    argv += ["--bare-requests", "50", "--sqlite-seconds", "0.5"]
    argv += ["--workdir", str(tmp_path / "work"), "--out", str(out)]

    assert main(argv) == 0

    data = json.loads(out.read_text())
    check, drain = data["check"], data["drain"]
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
