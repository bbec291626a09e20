"""The benchmark: ``python -m bench.throughput [--quick] [--with-10m]``, one command, one run.

Figures of a service mean little alone: this machine, this Python and this
disk set the ceilings. So the benchmark measures, in the same run, on the
same machine, with the same client code:

1. the ceiling of any gRPC call: an empty grpc.aio unary RPC (the standard
   health Check against a bare grpc.aio server in its own process), 64 in
   flight over the same channel layout as the service's phases;
2. the ceiling of storage: raw stdlib sqlite3 inserts of a ledger-entry row,
   1 and 1,000 per transaction, WAL and synchronous=FULL like the service;
   and the storage floor of a settled outcome: the same durability on the
   service's own tables, every row the service writes for one (entry, four
   postings, outcome row, balances, chain head), 1,000 outcomes per transaction;

and then the service itself, as an operator runs it (``python -m
rating_service serve`` on a fresh SQLite file, in its own process):

3. RecordOutcome, 64 in flight: calls/s and latency percentiles, as a ratio to (1);
   then at half that rate, open loop, for its p99;
4. RecordOutcomes of 1,000: outcomes/s, as a ratio to (2)'s batched figure
   (the target) and, for information, to (2)'s floor of a settled outcome:
   no writer of this schema beats the floor, so it bounds what the target asks;
5. ConsumeBucket and QuoteCost, 64 in flight;
6. with ``--with-10m``, all of it again on a ledger of 10 million entries
   (filled with ``bench.bulkfill``), driving customers with long chains, and
   (2)'s settled-outcome floor appended to that ledger: each customer's newest
   rows then sit on their own B-tree pages, so SQLite itself pays for a long
   history, and the service's drift is read against the storage's;
7. the server's peak resident memory throughout, and per phase its CPU time per call
   (or per outcome of a batch): read from ``/proc``, a figure the other loads of a
   shared machine move far less than the rates, so a lift shows there first.

It checks the ledger afterwards (every acknowledged write once, nothing
else, and ``rating-service verify`` on the empty-ledger run), prints a side
by side table with the targets met or missed, and writes
``bench/results/throughput.json`` for tracking across commits.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import profile, sqlite_yardstick
from bench.driver import (
    OK,
    Channels,
    DriveResult,
    Plan,
    Progress,
    Recorder,
    RpcSummary,
    Step,
    drive,
    status_name,
)
from bench.load import LoadConfig, Mix, RatingLoad, Verification
from bench.procs import RssSampler, ServerProcess, free_port, read_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CONCURRENCY = 64
PER_CHANNEL = 16
CUSTOMERS = 200
BATCH = 1000
BATCH_IN_FLIGHT = 4
"""RecordOutcomes calls in flight: 4,000 outcomes queued keep the writer's batches full."""
BIG_LEDGER = 10_000_000

TARGET_RECORD_VS_EMPTY = 0.7
TARGET_BATCH_VS_SQLITE = 0.5
TARGET_HALF_RATE_P99_MS = 10.0
TARGET_RSS_MIB = 300.0
TARGET_BIG_LEDGER_DRIFT = 0.10


@dataclass(frozen=True)
class Timing:
    phase: float
    warmup: float
    sqlite: float


NORMAL = Timing(phase=15.0, warmup=2.0, sqlite=5.0)
QUICK = Timing(phase=3.0, warmup=0.5, sqlite=1.5)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- yardsticks ---------------------------------------------------------------------


@dataclass
class Yardsticks:
    empty_rpc: RpcSummary
    sqlite_one: sqlite_yardstick.InsertRate
    sqlite_batch: sqlite_yardstick.InsertRate
    settled_floor: sqlite_yardstick.OutcomeRate
    big_floor: sqlite_yardstick.OutcomeRate | None = None
    """The same floor appended to the big ledger: what a long history costs SQLite itself."""

    @property
    def floor_vs_batch(self) -> float:
        """Outcomes/s of the floor over rows/s of the batched row yardstick."""
        return self.settled_floor.outcomes_per_s / self.sqlite_batch.rows_per_s


def measure_sqlite(
    workdir: Path, timing: Timing
) -> tuple[sqlite_yardstick.InsertRate, sqlite_yardstick.InsertRate, sqlite_yardstick.OutcomeRate]:
    say("yardstick: raw sqlite3 inserts (WAL, synchronous=FULL), 1 and 1,000 rows per transaction")
    path = workdir / "yardstick.db"
    one, batch = (sqlite_yardstick.measure(path, n, timing.sqlite) for n in (1, 1000))
    say(
        "yardstick: raw sqlite3, the rows of one settled outcome on the service's schema, "
        f"{sqlite_yardstick.OUTCOMES_PER_TRANSACTION:,} outcomes per transaction"
    )
    floor = sqlite_yardstick.measure_settled_outcomes(workdir / "floor.db", timing.sqlite)
    return one, batch, floor


def measure_big_floor(database: Path, timing: Timing) -> sqlite_yardstick.OutcomeRate:
    """The settled-outcome floor appended to the big ledger's own customers (chained, so
    ``rating-service verify`` still accepts the file)."""
    say(
        "yardstick: raw sqlite3, a settled outcome's rows, 1,000 per transaction, on the big ledger"
    )
    return sqlite_yardstick.measure_settled_outcomes(database, timing.sqlite, existing=True)


def settle_disk() -> None:
    """Let the kernel write back what earlier steps left dirty (a fill writes gigabytes
    without fsync), so that it is not timed as the next step's commits."""
    say("  os.sync(): writing back dirty pages before timing")
    os.sync()


async def measure_empty_rpc(workdir: Path, timing: Timing) -> RpcSummary:
    say(f"yardstick: empty grpc.aio unary RPC (health Check), {CONCURRENCY} in flight")
    address = f"127.0.0.1:{free_port()}"
    server = ServerProcess(
        argv=[sys.executable, "-m", "bench.empty_server", "--listen", address],
        address=address,
        log_path=workdir / "empty-server.log",
        cwd=ROOT,
    )
    await server.start()
    try:
        channels = Channels(address, CONCURRENCY, PER_CHANNEL)
        try:
            await channels.ready()
            recorder = Recorder(functools.partial(read_cpu_seconds, server.pid))
            request = health_pb2.HealthCheckRequest()
            stubs = [health_pb2_grpc.HealthStub(c) for c in channels.channels]

            def step_for(worker: int) -> Step:
                stub = stubs[worker % len(stubs)]

                async def step(due: float) -> None:
                    try:
                        await stub.Check(request, timeout=10)
                        code = OK
                    except grpc.aio.AioRpcError as error:
                        code = status_name(error.code())
                    recorder.record("Health.Check", time.perf_counter() - due, code)

                return step

            plan = Plan(duration=timing.phase, concurrency=CONCURRENCY, warmup=timing.warmup)
            result = await drive(plan, step_for, recorder, Progress(recorder, "empty RPC"))
            return result.rows[0]
        finally:
            await channels.close()
    finally:
        server.stop()


# ---- the service --------------------------------------------------------------------


@dataclass
class ServiceRun:
    label: str
    entries_before: int
    record_outcome: RpcSummary
    half_rate: RpcSummary
    half_rate_asked: float
    half_rate_late: int
    record_outcomes: RpcSummary
    consume: RpcSummary
    quote: RpcSummary
    peak_rss_mib: float
    verification: Verification | None
    verify_command: str
    profile: str = ""

    def figures(self) -> dict[str, float]:
        """The figures compared between ledgers (higher is better except latencies)."""
        return {
            "RecordOutcome calls/s": self.record_outcome.calls_per_s,
            "RecordOutcome p99 ms (64 in flight)": self.record_outcome.p99,
            "RecordOutcome p99 ms at half peak": self.half_rate.p99,
            "RecordOutcomes outcomes/s": self.record_outcomes.items_per_s,
            "ConsumeBucket calls/s": self.consume.calls_per_s,
            "QuoteCost calls/s": self.quote.calls_per_s,
        }


def service_env(database: Path, address: str) -> dict[str, str]:
    """The benchmark's own settings for the server, whatever the caller's environment says."""
    inherited = {k: "" for k in os.environ if k.startswith(("RATING_", "STRIPE_"))}
    return {
        **inherited,
        "RATING_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "RATING_LISTEN": address,
        "PYTHONUNBUFFERED": "1",
    }


@asynccontextmanager
async def running_service(database: Path, workdir: Path, name: str) -> Any:
    address = f"127.0.0.1:{free_port()}"
    server = ServerProcess(
        argv=[sys.executable, "-m", "rating_service", "serve"],
        address=address,
        log_path=workdir / f"{name}.log",
        env=service_env(database, address),
        cwd=workdir,
    )
    await server.start()
    sampler = RssSampler(server.pid).start()
    try:
        yield server, sampler
    finally:
        sampler.stop()
        code = server.stop()
        if code != 0:
            say(f"the server exited with {code}; its log: {server.log_path}")


PHASE_RPCS = {"settled": "RecordOutcome", "consume": "ConsumeBucket", "quote": "QuoteCost"}


async def _phase(
    load: RatingLoad,
    label: str,
    plan: Plan,
    *,
    operation: str,
    batch: int = 0,
    server_pid: int | None = None,
) -> tuple[RpcSummary, DriveResult]:
    """Drive one operation alone (no resends) and return its row of the table."""
    say(f"  {label}")
    load.recorder = Recorder(
        None if server_pid is None else functools.partial(read_cpu_seconds, server_pid)
    )
    load.mix = Mix.parse(f"{operation}=1")
    load.batch = batch
    load.retry_share = 0.0
    result = await drive(plan, load.step_for, load.recorder, Progress(load.recorder, label))
    rpc = "RecordOutcomes" if batch else PHASE_RPCS[operation]
    rows = {r.rpc: r for r in result.rows}
    if rpc not in rows:
        raise RuntimeError(f"{label}: no {rpc} call completed")
    return rows[rpc], result


@dataclass
class Phases:
    """What the service's phases measured, one row of the table each."""

    unary: RpcSummary
    half_rate: RpcSummary
    half_rate_asked: float
    half_rate_late: int
    batched: RpcSummary
    consume: RpcSummary
    quote: RpcSummary


async def run_phases(
    load: RatingLoad, timing: Timing, profiled: Recording | None, server_pid: int | None = None
) -> Phases:
    """RecordOutcome (peak, then half of it), RecordOutcomes, ConsumeBucket, QuoteCost."""
    closed = Plan(duration=timing.phase, concurrency=CONCURRENCY, warmup=timing.warmup)
    if profiled is not None:
        profiled.start(timing.warmup + timing.phase)
    unary, _ = await _phase(
        load, "RecordOutcome, 64 in flight", closed, operation="settled", server_pid=server_pid
    )
    if profiled is not None:
        profiled.finish()
    half = unary.calls_per_s / 2
    at_half, half_result = await _phase(
        load,
        f"RecordOutcome at half its peak rate ({half:,.0f}/s, open loop)",
        Plan(duration=timing.phase, rate=half, warmup=timing.warmup),
        operation="settled",
    )
    batched, _ = await _phase(
        load,
        f"RecordOutcomes of {BATCH}, {BATCH_IN_FLIGHT} in flight",
        Plan(duration=timing.phase, concurrency=BATCH_IN_FLIGHT, warmup=timing.warmup),
        operation="settled",
        batch=BATCH,
        server_pid=server_pid,
    )
    consume, _ = await _phase(
        load, "ConsumeBucket, 64 in flight", closed, operation="consume", server_pid=server_pid
    )
    quote, _ = await _phase(
        load, "QuoteCost, 64 in flight", closed, operation="quote", server_pid=server_pid
    )
    return Phases(unary, at_half, half, half_result.late, batched, consume, quote)


@dataclass
class Recording:
    """py-spy on the server during one phase; ``note`` says why there is no profile."""

    pid: int
    output: Path
    process: subprocess.Popen[bytes] | None = None
    note: str = ""

    def start(self, seconds: float) -> None:
        self.process = profile.start_recording(self.pid, seconds, self.output)

    def finish(self) -> None:
        self.note = profile.finish_recording(self.process)

    def describe(self) -> str:
        return profile.describe_file(self.output, self.note)


async def measure_service(
    database: Path,
    workdir: Path,
    timing: Timing,
    *,
    label: str,
    entries_before: int = 0,
    existing_customers: tuple[str, ...] = (),
    profile_output: Path | None = None,
) -> ServiceRun:
    """Start the server on ``database``, run the phases, check the ledger, stop it."""
    say(f"service on {label}: {database}")
    settle_disk()
    verification = None
    async with running_service(database, workdir, label.replace(" ", "-")) as (server, sampler):
        config = LoadConfig(
            target=server.address,
            concurrency=CONCURRENCY,
            customers=CUSTOMERS,
            per_channel=PER_CHANNEL,
            existing_customers=existing_customers,
            timeout=30.0,
        )
        recording = Recording(server.pid, profile_output) if profile_output else None
        channels = Channels(server.address, CONCURRENCY, PER_CHANNEL)
        try:
            await channels.ready()
            load = RatingLoad(config, channels, Recorder())
            await load.setup()
            phases = await run_phases(load, timing, recording, server.pid)
            if not existing_customers:  # a long-filled ledger would take minutes to read back
                say("  reading the ledger back: every acknowledged write once, nothing else")
                verification = await load.verify()
        finally:
            await channels.close()
    return ServiceRun(
        label=label,
        entries_before=entries_before,
        record_outcome=phases.unary,
        half_rate=phases.half_rate,
        half_rate_asked=phases.half_rate_asked,
        half_rate_late=phases.half_rate_late,
        record_outcomes=phases.batched,
        consume=phases.consume,
        quote=phases.quote,
        peak_rss_mib=sampler.peak_mib,
        verification=verification,
        verify_command="" if existing_customers else run_verify(database, workdir),
        profile=recording.describe() if recording else "",
    )


def run_verify(database: Path, workdir: Path) -> str:
    """``rating-service verify`` on the database: its last line (chain, sums, balances)."""
    say("  rating-service verify")
    done = subprocess.run(
        [sys.executable, "-m", "rating_service", "verify"],
        env={**os.environ, **service_env(database, "127.0.0.1:0")},
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    return f"exit {done.returncode}: {lines[-1] if lines else '(no output)'}"


# ---- the 10-million-entry ledger ------------------------------------------------------


def fill_big_ledger(database: Path, entries: int) -> tuple[tuple[str, ...], int]:
    """Fill (or reuse) a ledger of ``entries`` settled outcomes; (customer ids, entries)."""
    from bench import bulkfill

    if database.exists():
        count, customers = _ledger_size(database)
        if count >= entries:
            say(f"reusing {database}: {count:,} entries, {len(customers)} customers")
            return customers, count
        raise SystemExit(f"{database} holds {count:,} entries, fewer than {entries:,}: remove it")
    say(f"filling {database} with {entries:,} settled outcomes (bench.bulkfill; takes a while)")

    result = bulkfill.fill(
        database, outcomes=entries, customers=CUSTOMERS, progress=bulkfill.throttled_printer(15.0)
    )
    say(f"  {result.summary()}")
    return tuple(result.customer_ids), entries


def _ledger_size(database: Path) -> tuple[int, tuple[str, ...]]:
    conn = sqlite3.connect(database)
    try:
        (count,) = conn.execute("SELECT COALESCE(SUM(head_sequence), 0) FROM customers").fetchone()
        ids = tuple(
            r[0]
            for r in conn.execute(
                "SELECT customer_id FROM customers WHERE customer_id LIKE 'bench-%' ORDER BY customer_id"
            )
        )
    finally:
        conn.close()
    return int(count), ids[:CUSTOMERS]


# ---- the report ---------------------------------------------------------------------


@dataclass
class Target:
    name: str
    value: float
    limit: float
    unit: str
    met: bool


def targets(y: Yardsticks, runs: list[ServiceRun]) -> list[Target]:
    base = runs[0]
    found = [
        Target(
            "RecordOutcome >= 0.7 x empty-RPC ceiling",
            base.record_outcome.calls_per_s / y.empty_rpc.calls_per_s,
            TARGET_RECORD_VS_EMPTY,
            "x",
            base.record_outcome.calls_per_s / y.empty_rpc.calls_per_s >= TARGET_RECORD_VS_EMPTY,
        ),
        Target(
            "RecordOutcomes >= 0.5 x raw sqlite3 1,000/txn",
            base.record_outcomes.items_per_s / y.sqlite_batch.rows_per_s,
            TARGET_BATCH_VS_SQLITE,
            "x",
            base.record_outcomes.items_per_s / y.sqlite_batch.rows_per_s >= TARGET_BATCH_VS_SQLITE,
        ),
        Target(
            "RecordOutcome p99 at half peak rate < 10 ms",
            base.half_rate.p99,
            TARGET_HALF_RATE_P99_MS,
            "ms",
            base.half_rate.p99 < TARGET_HALF_RATE_P99_MS,
        ),
    ]
    for run in runs:
        found.append(
            Target(
                f"server RSS < 300 MiB ({run.label})",
                run.peak_rss_mib,
                TARGET_RSS_MIB,
                "MiB",
                run.peak_rss_mib < TARGET_RSS_MIB,
            )
        )
    if len(runs) > 1:
        worst = max(abs(_drift(runs[0], runs[1], name)) for name in runs[0].figures())
        found.append(
            Target(
                "every figure within 10% with 10M entries",
                worst,
                TARGET_BIG_LEDGER_DRIFT,
                "worst drift",
                worst <= TARGET_BIG_LEDGER_DRIFT,
            )
        )
    return found


def _drift(base: ServiceRun, big: ServiceRun, name: str) -> float:
    """Relative change from ``base`` to ``big`` (positive: better or worse by that much)."""
    before, after = base.figures()[name], big.figures()[name]
    return (after - before) / before if before else 0.0


def _rpc_line(label: str, row: RpcSummary, rate: str) -> str:
    return (
        f"  {label:<48} {rate:>18}   p50 {row.p50:6.2f}  p90 {row.p90:6.2f}  "
        f"p99 {row.p99:6.2f}  p99.9 {row.p999:6.2f} ms{_cpu(row)}{_errors(row)}"
    )


def _cpu(row: RpcSummary) -> str:
    return f"   server CPU {row.server_cpu_us:,.0f} us each" if row.server_cpu_us else ""


def _errors(row: RpcSummary) -> str:
    return (
        ""
        if not row.errors
        else "   errors: " + ", ".join(f"{c} {n:,}" for c, n in row.errors.items())
    )


FLOOR_LABEL = "raw sqlite3, a settled outcome's rows, 1,000/txn"


def render(y: Yardsticks, runs: list[ServiceRun], context: dict[str, Any]) -> str:
    out = [
        f"rating-service throughput: {context['cpus']} CPUs, Python {context['python']}, "
        f"grpcio {context['grpcio']}, SQLite {context['sqlite']}, commit {context['commit']}, "
        f"{context['mode']} ({context['phase_s']:g} s a phase after {context['warmup_s']:g} s warm-up)",
        "",
        "yardsticks (this machine, this run, the same client code)",
        _rpc_line(
            f"empty grpc.aio unary RPC, {CONCURRENCY} in flight",
            y.empty_rpc,
            f"{y.empty_rpc.calls_per_s:,.0f} calls/s",
        ),
        f"  {'raw sqlite3 insert, WAL + FULL, 1 row/txn':<48} {y.sqlite_one.rows_per_s:>13,.0f} rows/s",
        f"  {'raw sqlite3 insert, WAL + FULL, 1,000 rows/txn':<48} {y.sqlite_batch.rows_per_s:>13,.0f} rows/s",
        f"  {FLOOR_LABEL:<48} "
        f"{y.settled_floor.outcomes_per_s:>13,.0f} outcomes/s   "
        f"({y.settled_floor.rows_per_outcome:.1f} rows each on the service's schema, "
        f"= {y.floor_vs_batch:.2f} x sqlite3 1,000/txn)",
    ]
    for run in runs:
        out += ["", f"service on {run.label} ({run.entries_before:,} entries before the run)"]
        out.append(
            _rpc_line(
                f"RecordOutcome, {CONCURRENCY} in flight",
                run.record_outcome,
                f"{run.record_outcome.calls_per_s:,.0f} calls/s",
            )
            + f"   = {run.record_outcome.calls_per_s / y.empty_rpc.calls_per_s:.2f} x empty RPC"
        )
        late = f", {run.half_rate_late:,} late" if run.half_rate_late else ""
        out.append(
            _rpc_line(
                f"RecordOutcome at half peak ({run.half_rate_asked:,.0f}/s asked{late})",
                run.half_rate,
                f"{run.half_rate.calls_per_s:,.0f} calls/s",
            )
        )
        out.append(
            _rpc_line(
                f"RecordOutcomes x{BATCH}, {BATCH_IN_FLIGHT} in flight",
                run.record_outcomes,
                f"{run.record_outcomes.items_per_s:,.0f} outcomes/s",
            )
            + f"   = {run.record_outcomes.items_per_s / y.sqlite_batch.rows_per_s:.2f} x sqlite3 1,000/txn"
        )
        out.append(
            f"  {'RecordOutcomes against the settled-outcome floor':<48} "
            f"{run.record_outcomes.items_per_s / y.settled_floor.outcomes_per_s:>13.2f} x      "
            f"(informational: the {TARGET_BATCH_VS_SQLITE:g} x target asks for "
            f"{TARGET_BATCH_VS_SQLITE / y.floor_vs_batch:.2f} x this floor)"
        )
        out.append(
            _rpc_line(
                f"ConsumeBucket, {CONCURRENCY} in flight",
                run.consume,
                f"{run.consume.calls_per_s:,.0f} calls/s",
            )
        )
        out.append(
            _rpc_line(
                f"QuoteCost, {CONCURRENCY} in flight",
                run.quote,
                f"{run.quote.calls_per_s:,.0f} calls/s",
            )
        )
        out.append(f"  {'server peak RSS (VmHWM)':<48} {run.peak_rss_mib:>14,.0f} MiB")
        if run.verification is not None:
            out.append("  " + run.verification.describe().replace("\n", "\n  "))
        if run.verify_command:
            out.append(f"  rating-service verify: {run.verify_command}")
    if len(runs) > 1:
        out += ["", f"{runs[1].label} against {runs[0].label}"]
        for name in runs[0].figures():
            before, after = runs[0].figures()[name], runs[1].figures()[name]
            drift = _drift(runs[0], runs[1], name)
            mark = "ok" if abs(drift) <= TARGET_BIG_LEDGER_DRIFT else "OUT"
            out.append(f"  {name:<40} {before:>12,.2f} {after:>12,.2f}   {drift:+7.1%}  {mark}")
        if y.big_floor is not None:
            before, after = y.settled_floor.outcomes_per_s, y.big_floor.outcomes_per_s
            out.append(
                f"  {'yardstick: raw sqlite3 floor outcomes/s':<40} {before:>12,.2f} {after:>12,.2f}"
                f"   {(after - before) / before:+7.1%}  (SQLite's own cost of the long history)"
            )
    out += ["", "targets"]
    for t in targets(y, runs):
        shown = f"{t.value:.0%}" if t.unit == "worst drift" else f"{t.value:,.2f} {t.unit}"
        out.append(f"  {t.name:<52} {shown:>14}   {'met' if t.met else 'MISSED'}")
    for run in runs:
        if run.profile:
            out += [
                "",
                f"server profile during RecordOutcome, {CONCURRENCY} in flight ({run.label}, py-spy)",
                run.profile,
            ]
    return "\n".join(out)


def context(timing: Timing, quick: bool) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "grpcio": version("grpcio"),
        "protobuf": version("protobuf"),
        "sqlite": sqlite3.sqlite_version,
        "mode": "quick" if quick else "normal",
        "phase_s": timing.phase,
        "warmup_s": timing.warmup,
        "load_average": os.getloadavg()[0],
    }


def as_json(y: Yardsticks, runs: list[ServiceRun], ctx: dict[str, Any]) -> dict[str, Any]:
    def run_dict(run: ServiceRun) -> dict[str, Any]:
        return {
            "label": run.label,
            "entries_before": run.entries_before,
            "record_outcome": run.record_outcome.as_dict(),
            "record_outcome_half_rate": {
                **run.half_rate.as_dict(),
                "asked_per_s": run.half_rate_asked,
                "late": run.half_rate_late,
            },
            "record_outcomes": {
                **run.record_outcomes.as_dict(),
                "batch": BATCH,
                "in_flight": BATCH_IN_FLIGHT,
            },
            "consume_bucket": run.consume.as_dict(),
            "quote_cost": run.quote.as_dict(),
            "peak_rss_mib": run.peak_rss_mib,
            "ledger_check": asdict(run.verification) if run.verification else None,
            "rating_service_verify": run.verify_command,
            "ratios": {
                "record_outcome_vs_empty_rpc": run.record_outcome.calls_per_s
                / y.empty_rpc.calls_per_s,
                "record_outcomes_vs_sqlite_batch": run.record_outcomes.items_per_s
                / y.sqlite_batch.rows_per_s,
                "record_outcomes_vs_settled_outcome_floor": run.record_outcomes.items_per_s
                / y.settled_floor.outcomes_per_s,
            },
        }

    return {
        "context": ctx,
        "yardsticks": {
            "empty_rpc": y.empty_rpc.as_dict(),
            "sqlite_1_per_txn_rows_per_s": y.sqlite_one.rows_per_s,
            "sqlite_1000_per_txn_rows_per_s": y.sqlite_batch.rows_per_s,
            "settled_outcome_floor": {
                "outcomes_per_s": y.settled_floor.outcomes_per_s,
                "outcomes_per_transaction": y.settled_floor.outcomes_per_transaction,
                "customers": y.settled_floor.customers,
                "rows_per_outcome": y.settled_floor.rows_per_outcome,
                "vs_sqlite_1000_per_txn": y.floor_vs_batch,
                "on_big_ledger_outcomes_per_s": y.big_floor.outcomes_per_s if y.big_floor else None,
            },
        },
        "service": [run_dict(r) for r in runs],
        "targets": [asdict(t) for t in targets(y, runs)],
    }


# ---- the command --------------------------------------------------------------------


@contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    if keep:
        path = Path(tempfile.mkdtemp(prefix="rating-bench-"))
        say(f"keeping the databases and logs in {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="rating-bench-") as name:
        yield Path(name)


async def benchmark(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    timing = QUICK if args.quick else NORMAL
    ctx = context(timing, args.quick)
    sqlite_one, sqlite_batch, settled_floor = measure_sqlite(workdir, timing)
    empty = await measure_empty_rpc(workdir, timing)
    yardsticks = Yardsticks(empty, sqlite_one, sqlite_batch, settled_floor)
    runs = [
        await measure_service(
            workdir / "empty.db",
            workdir,
            timing,
            label="empty ledger",
            profile_output=_profile_path(args, "empty"),
        )
    ]
    if args.with_10m:
        big = args.big_db or workdir / "big.db"
        customers, entries = fill_big_ledger(big, args.entries)
        settle_disk()
        yardsticks.big_floor = measure_big_floor(big, timing)
        label = f"{entries / 1e6:.1f}M-entry ledger"
        runs.append(
            await measure_service(
                big,
                workdir,
                timing,
                label=label,
                entries_before=entries,
                existing_customers=customers,
                profile_output=_profile_path(args, "big"),
            )
        )
    print(render(yardsticks, runs, ctx), flush=True)
    return as_json(yardsticks, runs, ctx)


def _profile_path(args: argparse.Namespace, ledger: str) -> Path | None:
    """Each ledger's RecordOutcome profile in its own file, so the two can be compared."""
    return RESULTS / f"profile-record-outcome-{ledger}.txt" if args.profile else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description="Measure rating-service beside its yardsticks (an empty gRPC call, raw "
        "sqlite3 inserts) on this machine, in one run; print a table, write JSON.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds a phase (under a minute)"
    )
    parser.add_argument(
        "--with-10m", action="store_true", help="repeat on a 10-million-entry ledger"
    )
    parser.add_argument(
        "--entries",
        type=int,
        default=BIG_LEDGER,
        help="the big ledger's size for --with-10m (default 10,000,000); a smaller one "
        "fills faster, for before/after runs",
    )
    parser.add_argument(
        "--big-db",
        type=Path,
        help="the big ledger's file: reused if it exists, else filled and kept",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server during RecordOutcome, on each ledger",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and server logs")
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "throughput.json", help="where the JSON goes"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with workspace(args.keep) as workdir:
        report = asyncio.run(benchmark(args, workdir))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
