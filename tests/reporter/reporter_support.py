"""What the reporter's end-to-end tests share: a Stripe test server on the real clock, a
gateway aimed at it (and the ``rig`` of both with the running service), a workload builder,
the ledger's and Stripe's view of usage, changes made in Stripe behind the reporter's back,
the Prometheus gauges, the CLI (``operator``) and ``serve`` as a process.

The fixtures here are assigned in each test module (``stripe_test_server =
reporter_support.stripe_test_server``) so they do not collide with the gateway
tests' ``conftest.py`` (whose server stands on a manual clock in January 2026;
the reporter stamps usage with the ledger's real times, so its server must
follow the real clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import random
import re
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from e2e.service_process import ServiceProcess, free_port
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from sqlalchemy import select
from support import all_entries, usd, window

from rating_service.app import Service
from rating_service.ledger import outbox
from rating_service.ledger.schema import stripe_meter_events
from rating_service.reporter.loop import PassResult, Reporter
from rating_service.reporter.reconcile import Reconciliation, reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.service.store import LedgerStore
from rating_service.testing.stripe_server import StripeTestServer

API_KEY = "sk_test_x"
EVENT_NAME = "resolution"
"""The outcome type every workload records, and so the meter's event name."""
BATCH = 1000
"""RecordOutcomes carries at most 1,000 outcomes a call."""
CLI_TIMEOUT = 60.0
_T = TypeVar("_T")


class MovableClock(Protocol):
    """The ``clock`` fixture (tests/conftest.py): the service's time, which a test moves on."""

    def __call__(self) -> datetime: ...

    def advance(self, delta: timedelta) -> None: ...


@pytest.fixture
async def stripe_test_server() -> AsyncIterator[StripeTestServer]:
    """A started Stripe test server on the real clock (strict about customers, no rate limit)."""
    async with StripeTestServer(clock=time.time) as server:
        yield server


@pytest.fixture
async def stripe_gateway(stripe_test_server: StripeTestServer) -> AsyncIterator[StripeGateway]:
    """The real gateway over the real SDK, aimed at the test server; short timeout, fast pace."""
    gateway = StripeGateway(
        API_KEY,
        api_base=stripe_test_server.base_url,
        meter_events_base=stripe_test_server.base_url,
        requests_per_second=2000.0,
        timeout=1.0,
    )
    yield gateway
    await gateway.close()


@dataclass(frozen=True)
class Rig:
    """A reporter's surroundings: the running service (its store, a client, its clock), the
    Stripe test server, and a gateway aimed at it."""

    service: Service
    stub: rating_pb2_grpc.RatingServiceStub
    clock: MovableClock
    server: StripeTestServer
    gateway: StripeGateway

    @property
    def store(self) -> LedgerStore:
        return self.service.store

    def reporter(self, settings: ReporterSettings) -> Reporter:
        return Reporter(self.store, self.gateway, settings, self.clock)

    async def set_up_meters(self, settings: ReporterSettings) -> None:
        """What ``stripe setup`` does: a meter for every priced outcome type."""
        _, missing = await ensure_meters(self.store, self.gateway, settings, create=True)
        assert missing == []

    async def reconcile(self, settings: ReporterSettings) -> Reconciliation:
        return await reconcile(self.store, self.gateway, settings, self.clock())


@pytest.fixture
def rig(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: MovableClock,
    stripe_test_server: StripeTestServer,
    stripe_gateway: StripeGateway,
) -> Rig:
    return Rig(service, stub, clock, stripe_test_server, stripe_gateway)


# The workload


@dataclass(frozen=True)
class Plan:
    """Who is who: rating customer -> Stripe customer, and which ones are on a quick card."""

    stripe_ids: Mapping[str, str]
    quick: frozenset[str] = frozenset()

    @property
    def customers(self) -> list[str]:
        return list(self.stripe_ids)


async def put_card(
    stub: rating_pb2_grpc.RatingServiceStub,
    card: str,
    price: str,
    settlement_window: timedelta | None = None,
    *,
    outcome_types: Sequence[str] = (EVENT_NAME,),
) -> None:
    """A USD rate card pricing each of ``outcome_types`` at ``price``."""
    request = pb.PutRateCardRequest(
        rate_card_id=card,
        currency_code="USD",
        prices=[pb.Price(outcome_type=t, unit_price=usd(price)) for t in outcome_types],
    )
    if settlement_window is not None:
        for priced in request.prices:
            priced.settlement_window.CopyFrom(window(settlement_window))
    await stub.PutRateCard(request)


async def put_customer(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str, stripe_id: str, card: str
) -> None:
    await stub.PutCustomer(
        pb.PutCustomerRequest(
            customer_id=customer_id, stripe_customer_id=stripe_id, rate_card_id=card
        )
    )


async def record_all(
    stub: rating_pb2_grpc.RatingServiceStub,
    requests: Sequence[pb.RecordOutcomeRequest],
    call_timeout: float = 60.0,
) -> list[pb.RecordOutcomeResponse]:
    """Record in batches of at most 1,000; every item must succeed."""
    responses: list[pb.RecordOutcomeResponse] = []
    for start in range(0, len(requests), BATCH):
        batch = requests[start : start + BATCH]
        reply = await stub.RecordOutcomes(
            pb.RecordOutcomesRequest(requests=batch), timeout=call_timeout
        )
        for request, result in zip(batch, reply.results, strict=True):
            assert result.WhichOneof("result") == "response", (
                f"{request.customer_id}/{request.outcome_id}: {result.error}"
            )
            responses.append(result.response)
    return responses


def outcome(customer_id: str, outcome_id: str, *, pending: bool = False) -> pb.RecordOutcomeRequest:
    return pb.RecordOutcomeRequest(
        customer_id=customer_id,
        outcome_id=outcome_id,
        outcome_type=EVENT_NAME,
        state=pb.OUTCOME_STATE_PENDING if pending else pb.OUTCOME_STATE_CONFIRMED,
    )


async def gather_bounded(calls: Iterable[Callable[[], Awaitable[_T]]], limit: int = 64) -> list[_T]:
    """Make and await the calls with at most ``limit`` in flight (a grpc.aio call starts
    when it is made, so each is made only once it may run)."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[_T]]) -> _T:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


async def create_bucket(
    stub: rating_pb2_grpc.RatingServiceStub,
    customer_id: str,
    bucket_id: str,
    quantity: int,
    *,
    unit_price: str | None = None,
    source: int = pb.BUCKET_SOURCE_PURCHASE,
) -> pb.Bucket:
    request = pb.CreateBucketRequest(
        customer_id=customer_id,
        bucket_id=bucket_id,
        outcome_type=EVENT_NAME,
        quantity=quantity,
        source=source,
    )
    if unit_price is not None:
        request.unit_price.CopyFrom(usd(unit_price))
    bucket: pb.Bucket = await stub.CreateBucket(request)
    return bucket


def cents(money_units: int, money_nanos: int, quantity: int) -> int:
    """``quantity`` x a unit price, in cents (the workloads' prices are whole cents)."""
    value = (Decimal(money_units) + Decimal(money_nanos) / Decimal(10**9)) * quantity * 100
    assert value == value.to_integral_value(), f"{value} is not a whole number of cents"
    return int(value)


@dataclass
class Workload:
    """Outcomes of many customers: pending ones confirmed or left to their window, reversals
    before and after reporting, buckets; in phases a test interleaves with reporting.

    Per customer, outcome ``j`` of ``per_customer`` is:
    - recorded PENDING when ``j % 5 == 0`` (20 %), else confirmed; pending outcomes of
      "quick" customers (a 2 s settlement window) settle by their window, all others are
      confirmed with ConfirmOutcome;
    - reversed before the first report when ``j % 40 == 1``, after it when ``j % 40 == 2``
      (5 % in all);
    - recorded late when ``j >= per_customer - LATE``: after every reversal, so that under
      the reversal policy ("net within the period": a reversal the planner does not net at
      once is a debt paid off by the period's next usage) Stripe's total must end equal to
      the ledger's net. LATE is more than the reversals of a customer.
    The first ``bucket_customers`` customers get a bucket each.
    """

    customers: int
    per_customer: int
    quick_customers: int
    bucket_customers: int

    LATE = 10
    STANDARD_PRICE = "0.99"
    QUICK_PRICE = "1.25"
    QUICK_WINDOW = timedelta(seconds=2)

    @property
    def plan(self) -> Plan:
        ids = {f"cust-{i:03d}": f"cus_w{i:03d}" for i in range(self.customers)}
        quick = frozenset(list(ids)[self.customers - self.quick_customers :])
        return Plan(ids, quick)

    @property
    def total_outcomes(self) -> int:
        return self.customers * self.per_customer

    def _ids(self, customer: str, which: Iterable[int]) -> list[str]:
        return [f"{customer}-o{j:05d}" for j in which]

    def _early(self) -> range:
        return range(self.per_customer - self.LATE)

    async def set_up(
        self, stub: rating_pb2_grpc.RatingServiceStub, server: StripeTestServer
    ) -> dict[str, pb.Bucket]:
        """Rate cards, customers (known to Stripe), buckets; the buckets by bucket id."""
        plan = self.plan
        await put_card(stub, "standard", self.STANDARD_PRICE)
        await put_card(stub, "quick", self.QUICK_PRICE, settlement_window=self.QUICK_WINDOW)
        for customer, stripe_id in plan.stripe_ids.items():
            server.add_customer(stripe_id)
            await put_customer(
                stub, customer, stripe_id, "quick" if customer in plan.quick else "standard"
            )
        buckets = {}
        for i, customer in enumerate(plan.customers[: self.bucket_customers]):
            bucket_id = f"bucket-{customer}"
            buckets[bucket_id] = await create_bucket(
                stub,
                customer,
                bucket_id,
                quantity=20 + 7 * i,
                # Every other bucket has its own unit price and is promotional.
                unit_price="0.50" if i % 2 else None,
                source=pb.BUCKET_SOURCE_PROMOTIONAL if i % 2 else pb.BUCKET_SOURCE_PURCHASE,
            )
        return buckets

    async def record_early(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        """Every outcome but the late ones, customers interleaved in each batch."""
        requests = [
            outcome(customer, f"{customer}-o{j:05d}", pending=j % 5 == 0)
            for j in self._early()
            for customer in self.plan.customers
        ]
        await record_all(stub, requests)

    async def _reverse(self, stub: rating_pb2_grpc.RatingServiceStub, remainder: int) -> None:
        calls = [
            partial(
                stub.ReverseOutcome,
                pb.ReverseOutcomeRequest(
                    customer_id=customer, outcome_id=outcome_id, reason="conversation_reopened"
                ),
            )
            for customer in self.plan.customers
            for outcome_id in self._ids(customer, (j for j in self._early() if j % 40 == remainder))
        ]
        replies = await gather_bounded(calls)
        assert all(r.state == pb.OUTCOME_STATE_REVERSED for r in replies)

    async def reverse_before_reporting(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        await self._reverse(stub, 1)

    async def reverse_after_reporting(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        await self._reverse(stub, 2)

    async def settle_and_finish(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        """Record the late outcomes, confirm the pending ones of standard customers, and wait
        (bounded) until those of quick customers have settled by their window."""
        plan = self.plan
        late = [
            outcome(c, f"{c}-o{j:05d}", pending=j % 5 == 0)
            for j in range(self.per_customer - self.LATE, self.per_customer)
            for c in plan.customers
        ]
        await record_all(stub, late)
        confirms = [
            partial(stub.ConfirmOutcome, pb.ConfirmOutcomeRequest(customer_id=c, outcome_id=o))
            for c in plan.customers
            if c not in plan.quick
            for o in self._ids(c, (j for j in range(self.per_customer) if j % 5 == 0))
        ]
        await gather_bounded(confirms)
        await wait_until_settled(stub, plan.customers)


# What the ledger says


async def ledger_usage(stub: rating_pb2_grpc.RatingServiceStub, customer_id: str) -> int:
    """Net settled outcomes of the customer: the sum of its ``usage:<month>:outcomes`` postings.

    This is the ledger's own double-entry account (what GetBalance.period_outcomes
    reads for the current month), summed over every month the entries touch.
    """
    return sum(
        int(p.amount)
        for entry in await all_entries(stub, customer_id)
        for p in entry.postings
        if re.fullmatch(r"usage:\d{4}-\d{2}:outcomes", p.account)
        and p.asset == f"unit:{EVENT_NAME}"
    )


async def ledger_usage_by_customer(
    stub: rating_pb2_grpc.RatingServiceStub, customers: Iterable[str]
) -> dict[str, int]:
    customers = list(customers)
    totals = await asyncio.gather(*(ledger_usage(stub, c) for c in customers))
    return dict(zip(customers, totals, strict=True))


async def pending_total(stub: rating_pb2_grpc.RatingServiceStub, customers: Iterable[str]) -> int:
    balances = await asyncio.gather(
        *(stub.GetBalance(pb.GetBalanceRequest(customer_id=c)) for c in customers)
    )
    return sum(b.pending_outcomes for b in balances)


async def wait_until_settled(
    stub: rating_pb2_grpc.RatingServiceStub, customers: Iterable[str], within: float = 30.0
) -> None:
    """Wait (bounded) until no outcome of these customers is pending any more."""
    customers = list(customers)
    deadline = time.monotonic() + within
    while (left := await pending_total(stub, customers)) > 0:
        assert time.monotonic() < deadline, f"{left} outcomes still pending after {within} s"
        await asyncio.sleep(0.1)


# What Stripe says


def stripe_usage(server: StripeTestServer, plan: Plan) -> dict[str, int]:
    """The meter's total per rating customer, as the Stripe test server adds it up."""
    return {c: server.state.meter_totals(s, EVENT_NAME) for c, s in plan.stripe_ids.items()}


def stripe_events(server: StripeTestServer) -> dict[str, tuple[str, int]]:
    """Every meter event Stripe accepted: identifier -> (Stripe customer, value)."""
    return {e.identifier: (e.customer, e.value) for e in server.state.events}


async def planned_events(store: LedgerStore, plan: Plan) -> dict[str, tuple[str, int]]:
    """Every meter event the reporter planned (once, with its cursor), as Stripe should hold it."""
    columns = (
        stripe_meter_events.c.identifier,
        stripe_meter_events.c.customer_id,
        stripe_meter_events.c.value,
    )
    rows = await store.read(lambda c: c.execute(select(*columns)).all())
    return {identifier: (plan.stripe_ids[customer], value) for identifier, customer, value in rows}


def grants_per_bucket(
    server: StripeTestServer, plan: Plan, bucket_ids: Iterable[str]
) -> dict[str, int]:
    """How many credit grants Stripe holds for each bucket (its id in the grant's metadata)."""
    counts: dict[str, int] = {}
    for bucket_id in bucket_ids:
        customer = bucket_id.removeprefix("bucket-")
        counts[bucket_id] = sum(
            1
            for g in server.state.grants_for(plan.stripe_ids[customer])
            if g["metadata"].get("bucket_id") == bucket_id
        )
    return counts


async def send_behind_the_reporters_back(
    server: StripeTestServer, stripe_customer_id: str, value: int, event_name: str = EVENT_NAME
) -> None:
    """A meter event for the customer sent straight to Stripe (not from the ledger), now."""
    await server.stripe_client().v1.billing.meter_events.create_async(
        {
            "event_name": event_name,
            "payload": {"stripe_customer_id": stripe_customer_id, "value": str(value)},
            "identifier": f"not-from-the-ledger-{uuid.uuid4().hex}",
            "timestamp": int(time.time()),
        }
    )


async def void_behind_the_reporters_back(server: StripeTestServer, grant_id: str) -> None:
    """Void a credit grant straight in Stripe, as someone in Stripe's dashboard would."""
    await server.stripe_client().v1.billing.credit_grants.void_grant_async(grant_id)


async def create_meter_behind_the_reporters_back(server: StripeTestServer, event_name: str) -> str:
    """A ``sum`` meter made in Stripe directly (not by ``stripe setup``); its id."""
    meter = await server.stripe_client().v1.billing.meters.create_async(
        {
            "display_name": event_name,
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
        }
    )
    return meter.id


def duplicate_identifiers(server: StripeTestServer) -> list[str]:
    seen: set[str] = set()
    duplicates = []
    for event in server.state.events:
        if event.identifier in seen:
            duplicates.append(event.identifier)
        seen.add(event.identifier)
    return duplicates


# The reporter


async def drain(reporter: Reporter, store: LedgerStore, max_passes: int = 50) -> list[PassResult]:
    """Run passes until one does nothing and nothing is left to send (bounded)."""
    results = []
    for _ in range(max_passes):
        result = await reporter.run_once()
        results.append(result)
        backlog = await store.read(outbox.backlog)
        if not result.did_work and backlog.entries_unplanned == 0 and backlog.events_unsent == 0:
            return results
    raise AssertionError(f"the reporter still had work after {max_passes} passes: {results}")


@dataclass(frozen=True)
class Reported:
    """One customer's usage and bucket, all in Stripe (by :func:`report_one_customer`)."""

    customer_id: str
    stripe_customer_id: str
    outcomes: int
    bucket_id: str
    grant_id: str


async def report_one_customer(
    rig: Rig, *, customer_id: str = "tamper-co", outcomes: int = 30
) -> Reported:
    """A customer Stripe knows, on a 0.99 card, with ``outcomes`` outcomes and a bucket of 10;
    the meter set up and everything reported (the reporter's default settings)."""
    stripe_customer_id = f"cus_{customer_id.replace('-', '_')}"
    bucket_id = f"bucket-{customer_id}"
    await put_card(rig.stub, "standard", "0.99")
    rig.server.add_customer(stripe_customer_id)
    await put_customer(rig.stub, customer_id, stripe_customer_id, "standard")
    await create_bucket(rig.stub, customer_id, bucket_id, 10)
    await record_all(rig.stub, [outcome(customer_id, f"o-{i}") for i in range(outcomes)])
    settings = ReporterSettings()
    await rig.set_up_meters(settings)
    await drain(rig.reporter(settings), rig.store)
    assert rig.server.state.meter_totals(stripe_customer_id, EVENT_NAME) == outcomes
    (grant,) = rig.server.state.grants_for(stripe_customer_id)
    return Reported(customer_id, stripe_customer_id, outcomes, bucket_id, grant["id"])


async def backlog(store: LedgerStore) -> outbox.Backlog:
    return await store.read(outbox.backlog)


def metric(name: str, **labels: str) -> float | None:
    """A sample of this process's Prometheus registry (None: the series does not exist)."""
    return REGISTRY.get_sample_value(name, labels)


async def scrape(listen: str, name: str, **labels: str) -> float | None:
    """A sample from a process's metrics endpoint (RATING_METRICS_LISTEN's ``host:port``);
    None while the endpoint does not answer or has no such series."""

    def read() -> str | None:
        try:
            with urllib.request.urlopen(f"http://{listen}/metrics", timeout=2.0) as response:
                text: str = response.read().decode()
                return text
        except OSError:
            return None

    text = await asyncio.to_thread(read)
    for family in text_string_to_metric_families(text or ""):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    what: Callable[[], str] | str,
    within: float = 20.0,
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds saying ``what`` (a string,
    or a function making one, called only then)."""
    deadline = time.monotonic() + within
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            message = what if isinstance(what, str) else what()
            raise AssertionError(f"not within {within} s: {message}")
        await asyncio.sleep(0.05)


# The command line


def cli_env(database_url: str, server: StripeTestServer, **extra: str) -> dict[str, str]:
    """The test runner's environment without its own RATING_/STRIPE_ settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATING_", "STRIPE_"))}
    env.update(
        {
            "RATING_DATABASE_URL": database_url,
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_API_BASE": server.base_url,
            "STRIPE_METER_EVENTS_BASE": server.base_url,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


@dataclass(frozen=True)
class CliResult:
    code: int
    output: str

    def row(self, customer_id: str, kind: str | None = None) -> list[str]:
        """The cells of the one line of ``reconcile``'s table that starts with the customer
        (and has this kind: ``usage``, ``money``, ``grant``, ``late``)."""
        rows = [
            cells
            for line in self.output.splitlines()
            if line.startswith(f"{customer_id} ")
            and (cells := re.split(r"\s{2,}", line.strip()))
            and kind in (None, cells[1])
        ]
        assert len(rows) == 1, f"{len(rows)} {kind or ''} rows for {customer_id}:\n{self.output}"
        return rows[0]


async def run_cli(
    *args: str, env: Mapping[str, str], cwd: Path, within: float = CLI_TIMEOUT
) -> CliResult:
    """``python -m rating_service <args>`` without blocking the loop (the Stripe test server
    runs in it); stdout and stderr merged."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rating_service",
        *args,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"`rating-service {' '.join(args)}` ran over {within} s") from None
    assert process.returncode is not None
    return CliResult(process.returncode, output.decode(errors="replace"))


class Operator:
    """Runs ``rating-service`` commands on a database, aimed at the test server, with the
    reporter's settings given (``RATING_STRIPE_METERS=...``) added to the environment."""

    def __init__(
        self, database_url: str, server: StripeTestServer, workdir: Path, **settings: str
    ) -> None:
        self._env = cli_env(database_url, server, **settings)
        self._workdir = workdir

    async def __call__(self, *args: str) -> CliResult:
        return await run_cli(*args, env=self._env, cwd=self._workdir)


def serve_process(root: Path, server: StripeTestServer, **settings: str) -> ServiceProcess:
    """``rating-service serve`` as a process (not started yet) on ``root``/rating.db, its
    reporter aimed at the test server; ``settings`` add to its environment."""
    workdir = root / "service"
    workdir.mkdir()
    return ServiceProcess(
        workdir=workdir,
        database_path=root / "rating.db",
        address=f"127.0.0.1:{free_port()}",
        extra_env={
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_API_BASE": server.base_url,
            "STRIPE_METER_EVENTS_BASE": server.base_url,
            **settings,
        },
    )


@pytest.fixture
def operator(database_url: str, stripe_test_server: StripeTestServer, tmp_path: Path) -> Operator:
    """The command line on the service's database (the ``service`` fixture's), default settings."""
    return Operator(database_url, stripe_test_server, tmp_path)


__all__ = [
    "API_KEY",
    "EVENT_NAME",
    "CliResult",
    "MovableClock",
    "Operator",
    "Plan",
    "Reported",
    "Rig",
    "Workload",
    "backlog",
    "cents",
    "cli_env",
    "create_bucket",
    "create_meter_behind_the_reporters_back",
    "drain",
    "duplicate_identifiers",
    "eventually",
    "gather_bounded",
    "ledger_usage",
    "ledger_usage_by_customer",
    "metric",
    "operator",
    "outcome",
    "pending_total",
    "planned_events",
    "put_card",
    "put_customer",
    "record_all",
    "report_one_customer",
    "rig",
    "run_cli",
    "scrape",
    "send_behind_the_reporters_back",
    "serve_process",
    "stripe_events",
    "stripe_gateway",
    "stripe_test_server",
    "stripe_usage",
    "void_behind_the_reporters_back",
    "wait_until_settled",
]


async def kill_after_stripe_calls(
    process: ServiceProcess,
    server: StripeTestServer,
    rng: random.Random,
    deadline: float,
    calls: tuple[int, int] = (1, 4),
) -> None:
    """Wait for a random number (within ``calls``) of the process's calls to Stripe, then
    SIGKILL and restart it."""
    calls_before = len(server.requests)
    wanted = rng.randint(*calls)
    while len(server.requests) - calls_before < wanted:
        assert time.monotonic() < deadline, f"no reporting:\n{process.output()[-3000:]}"
        await asyncio.sleep(0.005)
    await asyncio.sleep(rng.uniform(0, 0.05))
    await asyncio.to_thread(process.kill)
    await asyncio.to_thread(process.start)


async def rotate_faults(
    server: StripeTestServer,
    stop: asyncio.Event,
    before_apply: Sequence[str],
    after_apply: Sequence[str],
    *,
    rate: float = 0.2,
    every: float = 0.25,
) -> None:
    """``rate`` of calls fail, alternately before and after the operation ran, the kinds
    drawn anew every ``every`` seconds, until ``stop``."""
    for seed in itertools.count():
        after = seed % 2 == 1
        server.faults.set_random(
            rate, after_apply if after else before_apply, seed=seed, after_apply=after
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
            server.faults.clear()
            return
