"""Soak: `serve` with auth on and its reporter facing a Stripe that fails a fifth of the calls,
under mixed load from both clients for RATING_SOAK_SECONDS (default 45; longer for a real
soak). The server's memory stays flat, every log line is free of secrets, `verify` passes and
Stripe ends holding exactly the ledger's usage.

The Python client records (settled and pending), confirms, reverses, quotes and reads
balances; the Node client records through its example program, both with their own tokens.
The database URL carries a password (PostgreSQL when the suite has one: it is ignored there,
as the server trusts loopback) so that the log is shown to mask it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import reporter_support as rs
from auth_support import Tokens, write_tokens
from rating_client import RatingClient
from support import fresh_postgres_database, run_node

from rating_service.testing.stripe_server import FaultKind, StripeTestServer

stripe_test_server = rs.stripe_test_server

SOAK_SECONDS = float(os.environ.get("RATING_SOAK_SECONDS", "45"))
CUSTOMERS = {f"soak-{i}": f"cus_soak_{i}" for i in range(6)}
STRIPE_KEY = f"sk_test_soak_{secrets.token_hex(12)}"
DB_PASSWORD = f"soak-db-{secrets.token_hex(8)}"
FAULT_RATE = 0.2
RSS_GROWTH_LIMIT = 40 * 1024 * 1024
"""Bytes the server's resident memory may grow from the first half of the run to the end:
a leak of a few hundred bytes a call passes it within a minute of this load."""
DRAIN_TIMEOUT = 90.0
POSTGRES_URL = os.environ.get("RATING_TEST_POSTGRES_URL", "")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL with a password in the URL when the suite has a server; else SQLite."""
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}"
        return
    with fresh_postgres_database(POSTGRES_URL) as url:
        yield url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PythonLoad:
    """One client's mixed load: each round records 20 outcomes (a quarter pending), confirms
    the pending ones of the round before, reverses one, quotes and reads a balance."""

    def __init__(self, client: RatingClient, name: str) -> None:
        self.client, self.name = client, name
        self.rounds = 0
        self._pending: list[tuple[str, str]] = []

    async def run(self, until: float) -> None:
        rng = random.Random(self.name)
        while time.monotonic() < until:
            self.rounds += 1
            for confirmed in self._pending:
                await self.client.confirm_outcome(customer_id=confirmed[0], outcome_id=confirmed[1])
            self._pending = []
            for n in range(20):
                customer = rng.choice(list(CUSTOMERS))
                outcome_id = f"{self.name}-{self.rounds}-{n}"
                pending = n % 4 == 0
                await self.client.record_outcome(
                    customer_id=customer,
                    outcome_id=outcome_id,
                    outcome_type=rs.EVENT_NAME,
                    state="PENDING" if pending else "CONFIRMED",
                )
                if pending:
                    self._pending.append((customer, outcome_id))
                elif n == 7:
                    await self.client.reverse_outcome(
                        customer_id=customer, outcome_id=outcome_id, reason="reopened"
                    )
            await self.client.quote_cost(
                customer_id=customer, outcome_type=rs.EVENT_NAME, quantity=3
            )
            await self.client.get_balance(customer_id=customer)


async def node_load(examples: Path, node: Path, address: str, token: str, until: float) -> int:
    """The Node client's example records 10 outcomes a run, run after run; the runs made."""
    runs = 0
    os.environ["RATING_TOKEN"] = token
    try:
        while time.monotonic() < until:
            customer = list(CUSTOMERS)[runs % len(CUSTOMERS)]
            ids = [f"node-{runs}-{n}" for n in range(10)]
            answers = await run_node(
                node, examples / "record.js", address, customer, rs.EVENT_NAME, *ids
            )
            assert [a.get("outcome_id") for a in answers] == ids, answers
            runs += 1
    finally:
        os.environ.pop("RATING_TOKEN", None)
    return runs


async def test_a_soak_keeps_memory_flat_secrets_out_of_the_log_and_stripe_equal_to_the_ledger(
    stripe_test_server: StripeTestServer,
    tmp_path: Path,
    database_url: str,
    node: Path,
    node_examples: Path,
) -> None:
    server = stripe_test_server
    tokens: Tokens = write_tokens(
        tmp_path / "tokens",
        {"operator": "admin", "py-worker": "record,read", "node-worker": "record"},
    )
    process = rs.serve_process(
        tmp_path,
        server,
        STRIPE_API_KEY=STRIPE_KEY,
        RATING_DATABASE_URL=database_url,
        RATING_AUTH_TOKENS_FILE=str(tokens.path),
        RATING_STRIPE_WINDOW="1",
        RATING_STRIPE_RATE="200",
        RATING_RECONCILE_INTERVAL="5",
        RATING_SWEEP_INTERVAL="0.2",
    )
    env = rs.cli_env(database_url, server, RATING_STRIPE_WINDOW="1", STRIPE_API_KEY=STRIPE_KEY)
    for stripe_id in CUSTOMERS.values():
        server.add_customer(stripe_id)
    await rs.create_meter_behind_the_reporters_back(server, rs.EVENT_NAME)
    server.faults.set_random(
        FAULT_RATE,
        [FaultKind.RATE_LIMITED, FaultKind.SERVER_ERROR, FaultKind.CONNECTION_RESET],
        seed=20261206,
    )
    await asyncio.to_thread(process.start)
    rss: list[tuple[float, int]] = []
    try:
        async with RatingClient(process.address, token=tokens["operator"]) as admin:
            await admin.put_rate_card(
                rate_card_id="standard",
                currency_code="USD",
                prices={rs.EVENT_NAME: Decimal("0.99")},
                settlement_windows={rs.EVENT_NAME: timedelta(hours=1)},
            )
            for customer, stripe_id in CUSTOMERS.items():
                await admin.put_customer(
                    customer_id=customer, rate_card_id="standard", stripe_customer_id=stripe_id
                )
        started = time.monotonic()
        until = started + SOAK_SECONDS

        async def sample_memory() -> None:
            while time.monotonic() < until:
                rss.append((time.monotonic() - started, rss_bytes(process.pid)))
                await asyncio.sleep(1.0)

        async with (
            RatingClient(process.address, token=tokens["py-worker"]) as first,
            RatingClient(process.address, token=tokens["py-worker"]) as second,
        ):
            loads = [PythonLoad(first, "py-a"), PythonLoad(second, "py-b")]
            node_runs, *_ = await asyncio.gather(
                node_load(node_examples, node, process.address, tokens["node-worker"], until),
                sample_memory(),
                *(load.run(until) for load in loads),
            )
        server.faults.clear()
        # Drained: reconcile finds Stripe and the ledger agree, per customer and month, in
        # units and money. Every reversal of this run is made within minutes of its outcome,
        # so each one cancels its carrier: nothing is left owed to the month's
        # close, and the meter totals equal the ledger exactly.
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while (reconciled := await rs.run_cli("reconcile", env=env, cwd=tmp_path)).code:
            assert time.monotonic() < deadline, reconciled.output
            await asyncio.sleep(1.0)
        async with RatingClient(process.address, token=tokens["operator"]) as admin:
            ledger = {c: await ledger_usage(admin, c) for c in CUSTOMERS}
        stripe = {c: server.state.meter_totals(s, rs.EVENT_NAME) for c, s in CUSTOMERS.items()}
        assert await asyncio.to_thread(process.terminate) == 0
    finally:
        await asyncio.to_thread(process.kill)
    log = process.output()

    curve = ", ".join(f"{t:.0f}s {b / 2**20:.1f}MiB" for t, b in rss)
    print(
        f"\nsoak: {SOAK_SECONDS:.0f} s, ledger {ledger}, Stripe {stripe}, rounds {[load.rounds for load in loads]}, node runs "
        f"{node_runs}, faults {dict(server.faults.injected)}; RSS {curve}"
    )
    first_half = [b for t, b in rss if t < SOAK_SECONDS / 2]
    assert rss[-1][1] - max(first_half) <= RSS_GROWTH_LIMIT, curve
    assert sum(server.faults.injected.values()) > 0
    assert node_runs > 0
    assert all(load.rounds > 1 for load in loads)
    assert rs.duplicate_identifiers(server) == []
    assert stripe == ledger
    for secret in (*tokens.by_caller.values(), STRIPE_KEY, DB_PASSWORD):
        assert secret not in log
    callers = {json.loads(line).get("caller") for line in log.splitlines() if line.startswith("{")}
    assert {"operator", "py-worker", "node-worker"} <= callers
    verify = await rs.run_cli("verify", env=env, cwd=tmp_path)
    assert verify.code == 0, verify.output


async def ledger_usage(client: RatingClient, customer: str) -> int:
    """The customer's net settled outcomes over every month: its ``usage:<month>:outcomes``."""
    total = Decimal(0)
    async for entry in client.iter_ledger_entries(customer_id=customer):
        for posting in entry.postings:
            if posting.account.startswith("usage:") and posting.account.endswith(":outcomes"):
                total += posting.amount
    return int(total)
