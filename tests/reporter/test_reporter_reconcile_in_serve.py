"""Periodic reconciliation inside ``serve``: every RATING_RECONCILE_INTERVAL it compares Stripe
with the ledger, logs drift naming the customer, and sets the drift gauge.

``rating-service serve`` runs as a real process with STRIPE_API_KEY set (its reporter and
reconciliation run in its event loop), RATING_RECONCILE_INTERVAL=1 and its metrics on
RATING_METRICS_LISTEN, aimed at a Stripe test server in this test's loop. Once its
reporter has caught up, a meter event for the customer is sent straight to Stripe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import reporter_support as rs
from e2e.service_process import ServiceProcess, free_port
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

stripe_test_server = rs.stripe_test_server

CUSTOMER = "drift-co"
STRIPE_ID = "cus_drift"
OUTCOMES = 5
EXTRA = 7
# Matched against "LEVEL logger: message", made from serve's JSON log lines.
CLEAN = re.compile(r"INFO \S+: reconcile: 1 customer-periods and 0 buckets checked; no differences")
DRIFT = re.compile(
    rf"WARNING \S+: Stripe drift: customer '{CUSTOMER}' usage {rs.EVENT_NAME} \d{{4}}-\d{{2}}: "
    rf"ledger {OUTCOMES}, Stripe {OUTCOMES + EXTRA}"
)


class Serving:
    """The ``serve`` process and the address of its metrics."""

    def __init__(self, process: ServiceProcess, metrics: str) -> None:
        self.process = process
        self.metrics = metrics

    async def drift(self, kind: str) -> float | None:
        return await rs.scrape(self.metrics, "rating_stripe_drift", kind=kind)

    async def drift_is(self, kind: str, value: float) -> bool:
        return await self.drift(kind) == value

    def log(self) -> str:
        """serve's log as ``LEVEL logger: message`` lines (it writes one JSON object a line)."""
        lines = []
        for line in self.process.output().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                lines.append(f"{record['level']} {record['logger']}: {record['message']}")
        return "\n".join(lines)

    def log_tail(self) -> str:
        return f"serve's log ends:\n{self.log()[-3000:]}"


@pytest.fixture
async def serving(stripe_test_server: StripeTestServer, tmp_path: Path) -> AsyncIterator[Serving]:
    """``serve`` reconciling every second; the customer known to Stripe, the meter made."""
    stripe_test_server.add_customer(STRIPE_ID)
    await rs.create_meter_behind_the_reporters_back(stripe_test_server, rs.EVENT_NAME)
    metrics = f"127.0.0.1:{free_port()}"
    process = rs.serve_process(
        tmp_path,
        stripe_test_server,
        RATING_RECONCILE_INTERVAL="1",
        RATING_METRICS_LISTEN=metrics,
    )
    await asyncio.to_thread(process.start)
    try:
        yield Serving(process, metrics)
    finally:
        await asyncio.to_thread(process.terminate)


async def test_serve_reconciles_periodically_and_logs_and_counts_drift_of_the_customer(
    stripe_test_server: StripeTestServer, serving: Serving
) -> None:
    async with grpc.aio.insecure_channel(serving.process.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        await rs.put_card(stub, "standard", "0.99")
        await rs.put_customer(stub, CUSTOMER, STRIPE_ID, "standard")
        await rs.record_all(stub, [rs.outcome(CUSTOMER, f"o-{i}") for i in range(OUTCOMES)])
    # Reported, and reconciled after that: the customer's period checked and clean.
    await rs.eventually(lambda: bool(CLEAN.search(serving.log())), serving.log_tail)
    drift_before = await serving.drift("usage")

    await rs.send_behind_the_reporters_back(stripe_test_server, STRIPE_ID, EXTRA)

    await rs.eventually(lambda: bool(DRIFT.search(serving.log())), serving.log_tail)
    await rs.eventually(
        lambda: serving.drift_is("usage", 1.0),
        lambda: f"the usage drift gauge is not 1\n{serving.log_tail()}",
    )
    assert drift_before == 0.0
    assert stripe_test_server.state.meter_totals(STRIPE_ID, rs.EVENT_NAME) == OUTCOMES + EXTRA
