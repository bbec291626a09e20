"""The reporter drains a backlog of settled outcomes into the Stripe test server.

The issue's benchmark: bulk-fill a ledger with 1,000,000 settled outcomes of
1,000 customers (``bench.bulkfill``), start the Stripe-compatible test server
in this process, run the real ``Reporter`` over the real ``StripeGateway`` (the
official SDK, aiohttp) until nothing is left to plan or send, and print the
outcomes drained a second and the HTTP calls made per 1,000 outcomes (from the
server's request log).

Figures mean little alone, so two yardsticks are measured in the same run, on
the same machine: a raw ``sqlite3`` insert (``bench.sqlite_yardstick``, the
one the other benchmarks use: ledger-entry rows, 1,000 per transaction, WAL,
``synchronous=FULL``, the service's durability) and the test server's bare
request rate (GET /v1/billing/meters through the same SDK, one in flight as
the reporter sends). The drain is also quoted as ratios to them.

Where the time goes: the store and the gateway the reporter gets are thin
timing wrappers, so every awaited ledger read, ledger write and Stripe call is
timed by what it does. The reporter awaits them one after the other, so their
sum is (almost) the drain's wall time. What the reporter costs the API is the
time it holds the ledger's one writer: each batch's run on the writer's
connection (statements and COMMIT) is timed too, and reported per pass and per
batch ("writer held").

The run ends with the check that makes the figure worth quoting: the test
server's meter total for every customer equals the ledger's usage for that
customer, exactly. Results go to ``bench/results/reporter_drain.json``.

Then cancels in the mix: a share of the outcomes (``--reverse-share``, spread
over the customers) is reversed through ``LedgerStore.reverse_outcome``, as the
API would, and a second drain is timed. Every reversal of an outcome whose
meter event went out within the day makes the reporter cancel that event (POST
/v2/billing/meter_event_adjustments) and send its replacement (the stream).
Its figures (reversals drained a second, HTTP calls per 1,000 reversals by
endpoint) are printed apart, and the same exactness check follows it: Stripe's
totals equal the ledger's usage net of the reversals.

    python -m bench.reporter_drain                      # 1,000,000 outcomes, 1,000 customers
    python -m bench.reporter_drain --outcomes 20000     # quick: well under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from bench import sqlite_yardstick
from bench.bulkfill import FillResult, fill, throttled_printer
from rating_service.domain.commands import ReverseOutcome
from rating_service.ledger import outbox
from rating_service.ledger.engine import BatchRunner, Engines, create_engines
from rating_service.reporter.gateway import (
    CancelAnswer,
    CreditGrantSpec,
    CreditGrantView,
    MeterEvent,
)
from rating_service.reporter.loop import PassResult, Reporter
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.setup import ensure_meters
from rating_service.reporter.stripe_gateway import StripeGateway
from rating_service.service.store import LedgerStore
from rating_service.testing.stripe_server import StripeTestServer

T = TypeVar("T")

RESULTS = Path(__file__).parent / "results" / "reporter_drain.json"
API_KEY = "sk_test_reporter_drain"
MAX_PASSES = 20
"""A pass plans and sends everything it finds; more than a few means something is stuck."""
PROGRESS_EVERY = 10.0

_JOB_NAMES = {
    "Reporter._plan.<locals>.<lambda>": "customers_with_work",
    "UsageSender.send_usage.<locals>.<lambda>": "unsent_events",
    "UsageSender._cancel.<locals>.<lambda>": "pending_cancels",
    "UsageSender._send.<locals>.<lambda>": "mark_sent",
    "PassContext.verified.<locals>.<lambda>": "mark_verified",
    "create_grants.<locals>.<lambda>": "grants_to_create",
    "PassContext.park.<locals>.<lambda>": "park",
    "void_stale_grants.<locals>.<lambda>": "stale_grants",
    "create_owed_credits.<locals>.<lambda>": "owed_credits_to_create",
    "Reporter.refresh_gauges.<locals>.<lambda>": "reporting_standing",
}
"""The reporter's inline jobs, by what they call in ``rating_service.ledger.outbox``."""
ADJUSTMENTS = "PostV2BillingMeterEventAdjustments"
STREAM = "PostV2BillingMeterEventStream"
REVERSE_CONCURRENCY = 256
"""Reversals in flight at once: the store's group-commit writer batches them as it would RPCs'."""
REVERSE_REASON = "reporter drain benchmark: reversed after reporting"


@dataclass(frozen=True)
class Options:
    outcomes: int = 1_000_000
    customers: int = 1_000
    requests_per_second: float = 1000.0
    """The gateway's own rate limit (the test server has none)."""
    window: timedelta = timedelta(minutes=1)
    """The reporter's aggregation window (its default)."""
    bare_requests: int = 1000
    sqlite_seconds: float = 3.0
    """How long the sqlite3 yardstick inserts."""
    reverse_share: float = 0.02
    """Share of the outcomes reversed after the first drain, for a second drain (0: none)."""
    stripe_latency: float = 0.0
    """Seconds every test-server answer is held back (its ``slow`` fault): a network's round trip."""
    workdir: Path | None = None
    """Where the ledger file goes (default: a temporary directory, removed afterwards)."""
    keep: bool = False
    quiet: bool = False


# ---- timing wrappers ---------------------------------------------------------------


@dataclass
class Timings:
    """Seconds and calls per label; the labels say what was awaited."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    writer_jobs: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Seconds each write job ran in the writer's transaction, by label (its COMMIT apart)."""

    def writer_job_table(self) -> dict[str, dict[str, float]]:
        return {
            label: {
                "jobs": len(held),
                "ms_mean": round(1000 * sum(held) / len(held), 3),
                "ms_max": round(1000 * max(held), 3),
            }
            for label, held in sorted(self.writer_jobs.items())
            if held
        }

    @contextlib.contextmanager
    def measure(self, label: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[label] += time.perf_counter() - began
            self.calls[label] += 1

    def table(self, total: float) -> list[dict[str, Any]]:
        rows = [
            {
                "what": label,
                "calls": self.calls[label],
                "seconds": round(seconds, 3),
                "share": round(seconds / total, 4) if total else 0.0,
                "ms_per_call": round(1000 * seconds / self.calls[label], 3),
            }
            for label, seconds in self.seconds.items()
        ]
        return sorted(rows, key=lambda r: -r["seconds"])


def job_label(job: Callable[..., Any]) -> str:
    func = getattr(job, "func", job)  # functools.partial(outbox.plan_range, ...)
    name = getattr(func, "__qualname__", type(func).__name__)
    return _JOB_NAMES.get(name, name)


class TimedStore(LedgerStore):
    """The ledger store, with every read and write job timed (queueing and commit included)."""

    def __init__(self, *args: Any, timings: Timings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timings = timings

    async def read(self, job: Callable[[Connection], T]) -> T:
        with self.timings.measure(f"db read  {job_label(job)}"):
            return await super().read(job)

    async def write(self, job: Callable[[Connection], T]) -> T:
        label = job_label(job)
        held = self.timings.writer_jobs[label]

        def timed(conn: Connection) -> T:
            began = time.perf_counter()
            try:
                return job(conn)
            finally:
                held.append(time.perf_counter() - began)

        with self.timings.measure(f"db write {label}"):
            return await super().write(timed)


@dataclass
class WriterHeld:
    """Seconds the writer's connection ran a batch (statements and COMMIT), batch by batch."""

    batches: list[float] = field(default_factory=list)
    passes: list[float] = field(default_factory=list)
    """The writer's seconds in each reporter pass."""
    pass_batches: list[int] = field(default_factory=list)
    _mark: int = 0

    def end_pass(self) -> None:
        self.passes.append(sum(self.batches[self._mark :]))
        self.pass_batches.append(len(self.batches) - self._mark)
        self._mark = len(self.batches)

    def summary(self) -> dict[str, float | int]:
        held = sorted(self.batches)
        return {
            "batches": len(held),
            "seconds": round(sum(held), 3),
            "ms_per_batch_mean": round(1000 * sum(held) / len(held), 3) if held else 0.0,
            "ms_per_batch_p99": round(1000 * held[int(0.99 * (len(held) - 1))], 3) if held else 0.0,
            "ms_per_batch_max": round(1000 * held[-1], 3) if held else 0.0,
            "passes": len(self.passes),
            "ms_per_pass_max": round(1000 * max(self.passes), 3) if self.passes else 0.0,
            "ms_per_idle_pass": round(1000 * self.passes[-1], 3) if self.passes else 0.0,
            "batches_in_idle_pass": self.pass_batches[-1] if self.pass_batches else 0,
        }


class TimedWriterRunner:
    """The writer's runner, timing each batch where it runs (the writer's own thread)."""

    def __init__(self, inner: BatchRunner, held: WriterHeld) -> None:
        self._inner = inner
        self.held = held

    async def run(self, work: Callable[[Connection], T]) -> T:
        def timed(conn: Connection) -> T:
            began = time.perf_counter()
            try:
                return work(conn)
            finally:
                self.held.batches.append(time.perf_counter() - began)

        return await self._inner.run(timed)

    async def close(self) -> None:
        await self._inner.close()


class TimedGateway:
    """``Gateway`` over ``StripeGateway``, each call timed (rate limit, SDK and HTTP included)."""

    def __init__(self, inner: StripeGateway, timings: Timings) -> None:
        self._inner = inner
        self._timings = timings

    @property
    def timings(self) -> Timings:
        return self._timings

    @timings.setter
    def timings(self, timings: Timings) -> None:
        self._timings = timings

    async def ensure_customer(self, stripe_customer_id: str) -> None:
        with self._timings.measure("stripe   ensure_customer"):
            await self._inner.ensure_customer(stripe_customer_id)

    async def send_meter_events(self, events: Sequence[MeterEvent]) -> None:
        with self._timings.measure("stripe   send_meter_events"):
            await self._inner.send_meter_events(events)

    async def cancel_meter_event(self, event_name: str, identifier: str) -> CancelAnswer:
        with self._timings.measure("stripe   cancel_meter_event"):
            return await self._inner.cancel_meter_event(event_name, identifier)

    async def create_credit_grant(self, grant: CreditGrantSpec) -> str:
        with self._timings.measure("stripe   create_credit_grant"):
            return await self._inner.create_credit_grant(grant)

    async def void_credit_grant(self, grant_id: str) -> None:
        with self._timings.measure("stripe   void_credit_grant"):
            await self._inner.void_credit_grant(grant_id)

    async def meter_ids(self) -> dict[str, str]:
        with self._timings.measure("stripe   meter_ids"):
            return await self._inner.meter_ids()

    async def create_meter(self, event_name: str, display_name: str) -> str:
        with self._timings.measure("stripe   create_meter"):
            return await self._inner.create_meter(event_name, display_name)

    async def meter_total(
        self, meter_id: str, stripe_customer_id: str, start: datetime, end: datetime
    ) -> int:
        with self._timings.measure("stripe   meter_total"):
            return await self._inner.meter_total(meter_id, stripe_customer_id, start, end)

    async def credit_grants(self, stripe_customer_id: str) -> list[CreditGrantView]:
        with self._timings.measure("stripe   credit_grants"):
            return await self._inner.credit_grants(stripe_customer_id)

    async def credit_balance(self, stripe_customer_id: str, grant_id: str) -> int:
        with self._timings.measure("stripe   credit_balance"):
            return await self._inner.credit_balance(stripe_customer_id, grant_id)

    async def close(self) -> None:
        await self._inner.close()


# ---- yardsticks -----------------------------------------------------------------------


def sqlite_insert_rate(directory: Path, seconds: float) -> float:
    """``bench.sqlite_yardstick``: ledger-entry rows, 1,000 a transaction, WAL, synchronous=FULL."""
    path = directory / "yardstick-sqlite.db"
    try:
        return sqlite_yardstick.measure(path, rows_per_transaction=1000, seconds=seconds).rows_per_s
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


async def bare_request_rate(server: StripeTestServer, requests: int) -> float:
    """GET /v1/billing/meters (limit 1) a second through the stripe SDK, one in flight."""
    client = server.stripe_client()
    await client.v1.billing.meters.list_async({"limit": 1})  # connection open, code warm
    began = time.perf_counter()
    for _ in range(requests):
        await client.v1.billing.meters.list_async({"limit": 1})
    return requests / (time.perf_counter() - began)


# ---- the drain --------------------------------------------------------------------------


@dataclass
class Drain:
    seconds: float = 0.0
    passes: int = 0
    planned_entries: int = 0
    events_sent: int = 0
    events_cancelled: int = 0
    grants_created: int = 0
    parked: int = 0
    http_calls: int = 0
    http_by_operation: dict[str, int] = field(default_factory=dict)
    http_failures: int = 0
    bare_requests_per_second: float = 0.0
    ledger_usage: dict[str, int] = field(default_factory=dict)
    stripe_usage: dict[str, int] = field(default_factory=dict)
    stream_rejections: int = 0
    stream_duplicates: int = 0
    timings: Timings = field(default_factory=Timings)
    writer: WriterHeld = field(default_factory=WriterHeld)

    def add(self, result: PassResult) -> None:
        self.passes += 1
        self.planned_entries += result.planned_entries
        self.events_sent += result.events_sent
        self.events_cancelled += result.events_cancelled
        self.grants_created += result.grants_created
        self.parked += result.parked


@dataclass
class Reversals:
    """The second phase: outcomes reversed after the first drain, then drained as cancels."""

    outcomes: int = 0
    customers: int = 0
    seconds: float = 0.0
    """Reversing them through the store (not part of the drain)."""
    drain: Drain = field(default_factory=Drain)


def outcomes_to_reverse(database_path: Path, share: float) -> list[tuple[str, str]]:
    """(customer, outcome) pairs, ``share`` of the settled outcomes, spread over the customers.

    Customer ``i`` of ``C`` gets ``floor((i + 1) n / C) - floor(i n / C)`` of the
    ``n``, each from the middle of an equal slice of its outcomes in ledger order,
    so the reversals fall on many customers and on many of their meter events.
    """
    with contextlib.closing(sqlite3.connect(database_path)) as db:
        rows = db.execute(
            "SELECT customer_id, outcome_id FROM outcomes WHERE state = 'SETTLED'"
            " ORDER BY customer_id, settle_sequence"
        ).fetchall()
    by_customer: defaultdict[str, list[str]] = defaultdict(list)
    for customer, outcome in rows:
        by_customer[customer].append(outcome)
    wanted = round(share * len(rows))
    customers = sorted(by_customer)
    picked: list[tuple[str, str]] = []
    for i, customer in enumerate(customers):
        own = by_customer[customer]
        k = min((i + 1) * wanted // len(customers) - i * wanted // len(customers), len(own))
        picked += [(customer, own[(2 * j + 1) * len(own) // (2 * k)]) for j in range(k)]
    return picked


async def reverse_outcomes(store: LedgerStore, picked: Sequence[tuple[str, str]]) -> None:
    """Reverse them as ``ReverseOutcome`` RPCs would, many in flight (the writer batches them)."""
    limit = asyncio.Semaphore(REVERSE_CONCURRENCY)

    async def one(customer: str, outcome: str) -> None:
        async with limit:
            await store.reverse_outcome(
                ReverseOutcome(customer, outcome, REVERSE_REASON), datetime.now(UTC)
            )

    await asyncio.gather(*(one(customer, outcome) for customer, outcome in picked))


async def _drain(reporter: Reporter, store: LedgerStore, drain: Drain) -> None:
    """Passes until one finds nothing to do and the backlog is empty (the last: an idle pass)."""
    for _ in range(MAX_PASSES):
        result = await reporter.run_once()
        drain.writer.end_pass()
        drain.add(result)
        backlog = await store.read(outbox.backlog)
        if backlog.parked:
            raise RuntimeError(f"customers parked: {backlog.parked}")
        empty = backlog.entries_unplanned == 0 and backlog.events_unsent == 0
        if empty and not result.did_work:
            return
    raise RuntimeError(f"the backlog is not empty after {MAX_PASSES} passes")


async def _progress(timings: Timings, began: float) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        print(
            f"  {time.perf_counter() - began:.0f} s: "
            f"{timings.calls['db write save_plan']:,} plan jobs, "
            f"{timings.calls['stripe   send_meter_events']:,} meter event requests, "
            f"{timings.calls['stripe   cancel_meter_event']:,} cancels",
            flush=True,
        )


async def drain_into_test_server(
    filled: FillResult, options: Options
) -> tuple[Drain, Reversals | None]:
    """Start the test server, set up meters, run the reporter until the backlog is empty.

    Then, with ``options.reverse_share``, reverse that share and drain again.
    """
    drain = Drain()
    reversals: Reversals | None = None
    settings = ReporterSettings(
        window=options.window, requests_per_second=options.requests_per_second
    )
    async with StripeTestServer(clock=time.time) as server:
        for stripe_id in filled.stripe_ids.values():
            server.add_customer(stripe_id)
        engines = create_engines(f"sqlite+aiosqlite:///{filled.database_path}")
        writer = TimedWriterRunner(engines.writer, WriterHeld())
        store = TimedStore(
            Engines(reader=engines.reader, reads=engines.reads, writer=writer),
            timings=drain.timings,
        )
        store.start()
        gateway = TimedGateway(
            StripeGateway(
                API_KEY,
                api_base=server.base_url,
                meter_events_base=server.base_url,
                requests_per_second=options.requests_per_second,
            ),
            drain.timings,
        )
        try:
            _, missing = await ensure_meters(store, gateway, settings, create=True)
            assert not missing, missing
            drain.bare_requests_per_second = await bare_request_rate(server, options.bare_requests)
            if options.stripe_latency > 0:
                server.faults.set_random(1.0, ["slow"], seed=0, delay=options.stripe_latency)
            drain.timings.seconds.clear()
            drain.timings.calls.clear()
            drain.timings.writer_jobs.clear()
            writer.held = drain.writer
            await _run_timed(store, gateway, settings, drain, server, options)
            _check(drain, filled, server)
            if options.reverse_share > 0:
                reversals = Reversals()
                picked = outcomes_to_reverse(filled.database_path, options.reverse_share)
                reversals.outcomes = len(picked)
                reversals.customers = len({customer for customer, _ in picked})
                if not options.quiet:
                    print(
                        f"reversing {reversals.outcomes:,} outcomes of "
                        f"{reversals.customers:,} customers",
                        flush=True,
                    )
                writer.held = WriterHeld()  # the reversals' own batches are not the reporter's
                began = time.perf_counter()
                await reverse_outcomes(store, picked)
                reversals.seconds = time.perf_counter() - began
                writer.held = reversals.drain.writer
                store.timings = gateway.timings = reversals.drain.timings
                await _run_timed(store, gateway, settings, reversals.drain, server, options)
                _check(reversals.drain, filled, server, after=drain)
        finally:
            await gateway.close()
            await store.close()
    return drain, reversals


def _check(
    drain: Drain, filled: FillResult, server: StripeTestServer, after: Drain | None = None
) -> None:
    """Both sides' usage per customer now; stream rejections and duplicates since ``after``."""
    drain.ledger_usage = ledger_usage(filled.database_path, filled.customer_ids)
    drain.stripe_usage = {
        c: server.state.meter_totals(filled.stripe_ids[c], filled.outcome_type)
        for c in filled.customer_ids
    }
    before_rejections = 0 if after is None else after.stream_rejections
    before_duplicates = 0 if after is None else after.stream_duplicates
    drain.stream_rejections = len(server.state.stream_rejections) - before_rejections
    drain.stream_duplicates = server.state.stream_duplicates - before_duplicates


async def _run_timed(
    store: LedgerStore,
    gateway: TimedGateway,
    settings: ReporterSettings,
    drain: Drain,
    server: StripeTestServer,
    options: Options,
) -> None:
    reporter = Reporter(store, gateway, settings, lambda: datetime.now(UTC))
    before = len(server.requests)
    began = time.perf_counter()
    progress = None if options.quiet else asyncio.create_task(_progress(drain.timings, began))
    try:
        await _drain(reporter, store, drain)
    finally:
        drain.seconds = time.perf_counter() - began
        if progress is not None:
            progress.cancel()
    requests = server.requests[before:]
    drain.http_calls = len(requests)
    drain.http_by_operation = dict(Counter(r.operation_id or r.path for r in requests))
    drain.http_failures = sum(1 for r in requests if r.status is None or r.status >= 300)


def ledger_usage(database_path: Path, customer_ids: Sequence[str]) -> dict[str, int]:
    """Each customer's settled outcomes net of reversals, summed over periods (balances)."""
    with contextlib.closing(sqlite3.connect(database_path)) as db:
        rows = db.execute(
            "SELECT customer_id, sum(amount) FROM balances"
            " WHERE account LIKE 'usage:%:outcomes' AND asset LIKE 'unit:%'"
            " GROUP BY customer_id"
        ).fetchall()
    found = {customer: int(total) for customer, total in rows}
    return {c: found.get(c, 0) for c in customer_ids}


# ---- the run ------------------------------------------------------------------------------


def mismatches(drain: Drain) -> dict[str, tuple[int, int]]:
    """Customers whose Stripe total differs from the ledger's: (ledger, Stripe)."""
    return {
        c: (total, drain.stripe_usage.get(c, 0))
        for c, total in drain.ledger_usage.items()
        if drain.stripe_usage.get(c, 0) != total
    }


def run(options: Options) -> dict[str, Any]:
    """Yardstick, fill, drain, check; the results as JSON-ready data."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="reporter-drain-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "reporter-drain.db"
    if database.exists():
        raise FileExistsError(f"{database} exists: the drain needs a fresh ledger")
    try:
        sqlite_rate = sqlite_insert_rate(workdir, options.sqlite_seconds)
        filled = fill(
            database,
            outcomes=options.outcomes,
            customers=options.customers,
            progress=None if options.quiet else throttled_printer(),
        )
        if not options.quiet:
            print(filled.summary(), flush=True)
        drain, reversals = asyncio.run(drain_into_test_server(filled, options))
    finally:
        if options.keep or options.workdir is not None:
            print(f"ledger kept: {database}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results(options, filled, drain, sqlite_rate, reversals)


def results(
    options: Options,
    filled: FillResult,
    drain: Drain,
    sqlite_rate: float,
    reversals: Reversals | None = None,
) -> dict[str, Any]:
    outcomes_per_second = filled.outcomes / drain.seconds
    http_per_second = drain.http_calls / drain.seconds
    wrong = mismatches(drain)
    awaited = sum(drain.timings.seconds.values())
    return {
        "run": {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            **{k: v for k, v in asdict(options).items() if k not in ("workdir", "window")},
            "window_seconds": options.window.total_seconds(),
        },
        "fill": {
            "outcomes": filled.outcomes,
            "customers": filled.customers,
            "rows": filled.rows,
            "seconds": round(filled.seconds, 3),
            "rows_per_second": round(filled.rows_per_second),
            "first_at": filled.first_at.isoformat(),
            "last_at": filled.last_at.isoformat(),
            "interval_seconds": filled.interval.total_seconds(),
        },
        "drain": {
            "seconds": round(drain.seconds, 3),
            "outcomes_per_second": round(outcomes_per_second, 1),
            "passes": drain.passes,
            "planned_entries": drain.planned_entries,
            "meter_events_sent": drain.events_sent,
            "outcomes_per_meter_event": round(filled.outcomes / max(drain.events_sent, 1), 2),
            "http_calls": drain.http_calls,
            "http_calls_per_1000_outcomes": round(1000 * drain.http_calls / filled.outcomes, 3),
            "http_calls_per_second": round(http_per_second, 1),
            "http_by_operation": drain.http_by_operation,
            "http_failures": drain.http_failures,
            "writer_held": drain.writer.summary(),
            "writer_held_per_job": drain.timings.writer_job_table(),
        },
        "yardsticks": {
            "sqlite_rows_per_second_1000_per_tx_wal_full": round(sqlite_rate),
            "test_server_bare_requests_per_second": round(drain.bare_requests_per_second, 1),
        },
        "ratios": {
            "drained_outcomes_per_s_to_sqlite_rows_per_s": round(
                outcomes_per_second / sqlite_rate, 4
            ),
            "http_calls_per_s_to_bare_request_rate": round(
                http_per_second / drain.bare_requests_per_second, 4
            ),
            "drained_outcomes_per_s_to_bare_request_rate": round(
                outcomes_per_second / drain.bare_requests_per_second, 2
            ),
        },
        "where_the_time_goes": {
            "awaited_seconds": round(awaited, 3),
            "unaccounted_seconds": round(drain.seconds - awaited, 3),
            "by_call": drain.timings.table(drain.seconds),
        },
        "check": exactness(drain, wrong, filled.outcomes),
        "reversals": None if reversals is None else reversal_results(filled, reversals),
    }


def exactness(
    drain: Drain, wrong: Mapping[str, tuple[int, int]], expected_total: int
) -> dict[str, Any]:
    """The check that makes a drain's figure worth quoting: Stripe holds the ledger's usage,
    every customer's, sent once."""
    return {
        "customers": len(drain.ledger_usage),
        "customers_matching": len(drain.ledger_usage) - len(wrong),
        "ledger_total": sum(drain.ledger_usage.values()),
        "stripe_total": sum(drain.stripe_usage.values()),
        "mismatches": {c: list(pair) for c, pair in sorted(wrong.items())[:20]},
        "stream_rejections": drain.stream_rejections,
        "stream_duplicates": drain.stream_duplicates,
        "ok": not wrong
        and drain.stream_rejections == 0
        and drain.stream_duplicates == 0
        and sum(drain.ledger_usage.values()) == expected_total,
    }


def reversal_results(filled: FillResult, reversals: Reversals) -> dict[str, Any]:
    """The second phase: its drain per reversal, by endpoint, and its own exactness check."""
    drain, count = reversals.drain, max(reversals.outcomes, 1)
    ops = drain.http_by_operation
    wrong = mismatches(drain)
    expected_total = filled.outcomes - reversals.outcomes
    return {
        "outcomes_reversed": reversals.outcomes,
        "customers": reversals.customers,
        "reverse_seconds": round(reversals.seconds, 3),
        "reversed_per_second": round(reversals.outcomes / reversals.seconds, 1)
        if reversals.seconds
        else 0.0,
        "drain": {
            "seconds": round(drain.seconds, 3),
            "reversals_per_second": round(reversals.outcomes / drain.seconds, 1),
            "passes": drain.passes,
            "planned_entries": drain.planned_entries,
            "meter_events_cancelled": drain.events_cancelled,
            "meter_events_sent": drain.events_sent,
            "http_calls": drain.http_calls,
            "http_calls_per_1000_reversals": round(1000 * drain.http_calls / count, 3),
            "adjustments_per_1000_reversals": round(1000 * ops.get(ADJUSTMENTS, 0) / count, 3),
            "stream_per_1000_reversals": round(1000 * ops.get(STREAM, 0) / count, 3),
            "http_by_operation": ops,
            "http_failures": drain.http_failures,
            "writer_held": drain.writer.summary(),
            "writer_held_per_job": drain.timings.writer_job_table(),
        },
        "where_the_time_goes": {
            "awaited_seconds": round(sum(drain.timings.seconds.values()), 3),
            "by_call": drain.timings.table(drain.seconds),
        },
        "check": exactness(drain, wrong, expected_total),
    }


def _ok(data: Mapping[str, Any]) -> bool:
    """Both checks hold (the second only when there was a second phase)."""
    return bool(data["check"]["ok"]) and (
        data["reversals"] is None or bool(data["reversals"]["check"]["ok"])
    )


def report(data: Mapping[str, Any]) -> str:
    """The results as a reader wants them: the headline, the yardsticks, the ratios, the check."""
    fill_, drain, sticks = data["fill"], data["drain"], data["yardsticks"]
    ratios, check, time_ = data["ratios"], data["check"], data["where_the_time_goes"]
    ops = ", ".join(f"{op} {n:,}" for op, n in sorted(drain["http_by_operation"].items()))
    lines = [
        f"reporter drain: {fill_['outcomes']:,} settled outcomes of {fill_['customers']:,} "
        f"customers, one per customer every {fill_['interval_seconds']:g} s "
        f"({fill_['first_at'][:19]} to {fill_['last_at'][:19]} UTC), "
        f"window {data['options']['window_seconds']:g} s, added Stripe latency "
        f"{data['options']['stripe_latency']:g} s",
        f"  bulk fill: {fill_['seconds']:.1f} s, {fill_['rows_per_second']:,} rows/s",
        f"  drained in {drain['seconds']:.1f} s: {drain['outcomes_per_second']:,.0f} outcomes/s "
        f"({drain['passes']} passes, {drain['planned_entries']:,} entries planned)",
        f"  meter events sent: {drain['meter_events_sent']:,} "
        f"({drain['outcomes_per_meter_event']:g} outcomes per event)",
        f"  HTTP calls: {drain['http_calls']:,} = {drain['http_calls_per_1000_outcomes']:g} per "
        f"1,000 outcomes, {drain['http_calls_per_second']:,.1f}/s; non-2xx: "
        f"{drain['http_failures']} ({ops})",
        _writer_line("  ", drain["writer_held"]),
        _jobs_line("  ", drain["writer_held_per_job"]),
        "yardsticks, same run:",
        f"  raw sqlite3 insert, WAL, synchronous=FULL, 1,000 rows/transaction: "
        f"{sticks['sqlite_rows_per_second_1000_per_tx_wal_full']:,} rows/s "
        "(bench.sqlite_yardstick: ledger-entry rows)",
        f"  test server, bare GET /v1/billing/meters via the stripe SDK, 1 in flight: "
        f"{sticks['test_server_bare_requests_per_second']:,.0f} requests/s",
        "ratios:",
        f"  drained outcomes/s / raw sqlite rows/s: "
        f"{ratios['drained_outcomes_per_s_to_sqlite_rows_per_s']:.3f}",
        f"  drained outcomes/s / bare requests/s: "
        f"{ratios['drained_outcomes_per_s_to_bare_request_rate']:.2f}",
        f"  HTTP calls/s during the drain / bare requests/s: "
        f"{ratios['http_calls_per_s_to_bare_request_rate']:.3f}",
        f"where the time goes ({time_['awaited_seconds']:.1f} s awaited, "
        f"{time_['unaccounted_seconds']:.1f} s between awaits):",
        *(
            f"  {row['what']:<32} {row['calls']:>8,} calls {row['seconds']:>9.2f} s "
            f"{100 * row['share']:>5.1f} % {row['ms_per_call']:>9.3f} ms/call"
            for row in time_["by_call"]
        ),
        f"check: Stripe test server's meter totals == ledger's usage for "
        f"{check['customers_matching']:,}/{check['customers']:,} customers "
        f"(Stripe {check['stripe_total']:,}, ledger {check['ledger_total']:,}; stream rejections "
        f"{check['stream_rejections']}, duplicates {check['stream_duplicates']}): "
        f"{'OK' if check['ok'] else 'MISMATCH'}",
    ]
    if check["mismatches"]:
        lines.append(f"  first mismatches (ledger, Stripe): {check['mismatches']}")
    if data["reversals"] is not None:
        lines += report_reversals(data["reversals"])
    return "\n".join(lines)


def _writer_line(indent: str, held: Mapping[str, Any]) -> str:
    return (
        f"{indent}writer held: {held['seconds']:.2f} s in {held['batches']:,} batches "
        f"(mean {held['ms_per_batch_mean']:.3f} ms, p99 {held['ms_per_batch_p99']:.3f} ms, "
        f"max {held['ms_per_batch_max']:.3f} ms); per pass max {held['ms_per_pass_max']:.1f} ms, "
        f"the last (idle) pass {held['ms_per_idle_pass']:.3f} ms in "
        f"{held['batches_in_idle_pass']} batches"
    )


def _jobs_line(indent: str, jobs: Mapping[str, Mapping[str, float]]) -> str:
    return f"{indent}writer held per job, statements without COMMIT (mean/max ms): " + ", ".join(
        f"{label} {j['ms_mean']:.3f}/{j['ms_max']:.3f} x{j['jobs']:g}" for label, j in jobs.items()
    )


def report_reversals(rev: Mapping[str, Any]) -> list[str]:
    """The second phase's lines: cancels in the mix."""
    drain, check, time_ = rev["drain"], rev["check"], rev["where_the_time_goes"]
    ops = ", ".join(f"{op} {n:,}" for op, n in sorted(drain["http_by_operation"].items()))
    lines = [
        f"cancels in the mix: {rev['outcomes_reversed']:,} outcomes of "
        f"{rev['customers']:,} customers reversed after the drain "
        f"({rev['reverse_seconds']:.1f} s through the store, "
        f"{rev['reversed_per_second']:,.0f}/s)",
        f"  drained in {drain['seconds']:.1f} s: {drain['reversals_per_second']:,.0f} "
        f"reversals/s ({drain['passes']} passes, {drain['planned_entries']:,} entries planned)",
        f"  meter events cancelled: {drain['meter_events_cancelled']:,}, "
        f"replacements sent: {drain['meter_events_sent']:,}",
        f"  HTTP calls: {drain['http_calls']:,} = {drain['http_calls_per_1000_reversals']:g} per "
        f"1,000 reversals (adjustments {drain['adjustments_per_1000_reversals']:g}, "
        f"stream {drain['stream_per_1000_reversals']:g}); non-2xx: {drain['http_failures']} "
        f"({ops})",
        _writer_line("  ", drain["writer_held"]),
        _jobs_line("  ", drain["writer_held_per_job"]),
        f"  where the time goes ({time_['awaited_seconds']:.1f} s awaited):",
        *(
            f"    {row['what']:<32} {row['calls']:>8,} calls {row['seconds']:>9.2f} s "
            f"{100 * row['share']:>5.1f} % {row['ms_per_call']:>9.3f} ms/call"
            for row in time_["by_call"]
        ),
        f"  check: Stripe test server's meter totals == ledger's net usage for "
        f"{check['customers_matching']:,}/{check['customers']:,} customers "
        f"(Stripe {check['stripe_total']:,}, ledger {check['ledger_total']:,}; stream rejections "
        f"{check['stream_rejections']}, duplicates {check['stream_duplicates']}): "
        f"{'OK' if check['ok'] else 'MISMATCH'}",
    ]
    if check["mismatches"]:
        lines.append(f"    first mismatches (ledger, Stripe): {check['mismatches']}")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.reporter_drain", description=__doc__)
    defaults = Options()
    parser.add_argument("--outcomes", type=int, default=defaults.outcomes)
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.requests_per_second,
        help="the gateway's requests/s limit (default %(default)s)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=defaults.window.total_seconds(),
        help="the reporter's aggregation window, seconds (default %(default)s)",
    )
    parser.add_argument("--bare-requests", type=int, default=defaults.bare_requests)
    parser.add_argument(
        "--sqlite-seconds",
        type=float,
        default=defaults.sqlite_seconds,
        help="how long the sqlite3 yardstick inserts (default %(default)s)",
    )
    parser.add_argument(
        "--reverse-share",
        type=float,
        default=defaults.reverse_share,
        help="share of the outcomes reversed after the drain, whose cancels and replacements a "
        "second drain sends (0: no second drain; default %(default)s)",
    )
    parser.add_argument(
        "--stripe-latency",
        type=float,
        default=defaults.stripe_latency,
        help="seconds the test server holds back every answer during the drain, as a network "
        "round trip to Stripe would (default %(default)s)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the ledger goes, kept (default: a temp dir, removed)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its ledger")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="JSON results (default %(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.reverse_share <= 1:
        parser.error(f"--reverse-share must be within [0, 1], got {args.reverse_share}")
    options = Options(
        outcomes=args.outcomes,
        customers=args.customers,
        requests_per_second=args.rate,
        window=timedelta(seconds=args.window),
        bare_requests=args.bare_requests,
        sqlite_seconds=args.sqlite_seconds,
        reverse_share=args.reverse_share,
        stripe_latency=args.stripe_latency,
        workdir=args.workdir,
        keep=args.keep,
    )
    data = run(options)
    print(report(data))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results: {args.out}")
    return 0 if _ok(data) else 1


if __name__ == "__main__":
    sys.exit(main())
