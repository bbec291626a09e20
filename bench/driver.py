"""Drives calls at a fixed concurrency or a fixed rate and times them, the same way for every RPC.

The load generator and the benchmark's yardsticks (an empty gRPC call) go
through this one module, so the ceiling and the service are measured by the
same client code: the same channels, the same clock, the same percentiles.

- Closed loop (``concurrency``): N workers, each sends its next call as soon
  as the previous one is answered. This finds the peak rate.
- Open loop (``rate``): calls start on a fixed schedule whether or not earlier
  ones are answered, and a call's latency counts from when it *should* have
  started, so a stalled server or client cannot hide its own delay
  (coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import grpc

OK = "OK"
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    # Each channel gets its own TCP connection: grpc shares subchannels between
    # channels with equal arguments unless told otherwise.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)

Step = Callable[[float], Awaitable[None]]
"""One unit of work; its argument is the ``perf_counter`` time it was due to start."""


@dataclass
class RpcStats:
    """What one RPC did: latencies of answered calls, counts by status code, items carried."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    codes: Counter[str] = field(default_factory=Counter)
    items: int = 0
    item_errors: Counter[str] = field(default_factory=Counter)
    """Batch calls: items answered with an error inside an OK call, by code."""

    @property
    def calls(self) -> int:
        return sum(self.codes.values())

    @property
    def errors(self) -> dict[str, int]:
        failed = {code: n for code, n in sorted(self.codes.items()) if code != OK}
        failed |= {f"item {code}": n for code, n in sorted(self.item_errors.items())}
        return failed


class Recorder:
    """Collects every call's outcome; ``reset`` starts a fresh window (after a warm-up).

    ``cpu_clock``: the server's CPU seconds so far, read with the window, so the summary
    says what a call cost the server in CPU, a figure another load on the machine moves
    far less than its rate."""

    def __init__(self, cpu_clock: Callable[[], float] | None = None) -> None:
        self.stats: dict[str, RpcStats] = {}
        self.started = time.perf_counter()
        self.in_flight = 0
        self.cpu_clock = cpu_clock
        self.cpu_started = cpu_clock() if cpu_clock else 0.0

    def reset(self) -> None:
        self.stats = {}
        self.started = time.perf_counter()
        self.cpu_started = self.cpu_clock() if self.cpu_clock else 0.0

    def cpu_used(self) -> float:
        """The server's CPU seconds since the window began (0.0 when not measured)."""
        return self.cpu_clock() - self.cpu_started if self.cpu_clock else 0.0

    def record(self, rpc: str, latency: float, code: str, items: int = 1) -> None:
        stats = self.stats.get(rpc)
        if stats is None:
            stats = self.stats[rpc] = RpcStats()
        stats.codes[code] += 1
        if code == OK:
            stats.latencies.append(latency)
            stats.items += items

    def total_calls(self) -> int:
        return sum(s.calls for s in self.stats.values())

    def total_errors(self) -> int:
        return sum(sum(s.errors.values()) for s in self.stats.values())


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(math.ceil(fraction * len(sorted_values)) - 1, 0)
    return sorted_values[min(rank, len(sorted_values) - 1)]


@dataclass(frozen=True)
class RpcSummary:
    """One row of the final table (times in milliseconds)."""

    rpc: str
    calls: int
    ok: int
    calls_per_s: float
    items_per_s: float
    errors: dict[str, int]
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    server_cpu_us: float = 0.0
    """The server process's CPU time per item (outcome), in microseconds; 0.0: not measured."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(recorder: Recorder, elapsed: float) -> list[RpcSummary]:
    rows = []
    cpu = recorder.cpu_used()
    for rpc, stats in sorted(recorder.stats.items()):
        ordered = sorted(stats.latencies)
        ms = [percentile(ordered, f) * 1000 for f in (0.5, 0.9, 0.99, 0.999)]
        rows.append(
            RpcSummary(
                rpc=rpc,
                calls=stats.calls,
                ok=stats.codes[OK],
                calls_per_s=stats.calls / elapsed if elapsed > 0 else 0.0,
                items_per_s=stats.items / elapsed if elapsed > 0 else 0.0,
                errors=stats.errors,
                p50=ms[0],
                p90=ms[1],
                p99=ms[2],
                p999=ms[3],
                max=(ordered[-1] * 1000) if ordered else 0.0,
                server_cpu_us=cpu / stats.items * 1e6 if stats.items else 0.0,
            )
        )
    return rows


def format_table(rows: Sequence[RpcSummary]) -> str:
    """The final table: per RPC, calls and rate, errors by code, latency percentiles in ms."""
    header = (
        f"{'rpc':<18} {'calls':>9} {'calls/s':>9} {'items/s':>10} "
        f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'max ms':>8}  errors"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        errors = ", ".join(f"{code} {n:,}" for code, n in r.errors.items()) or "none"
        lines.append(
            f"{r.rpc:<18} {r.calls:>9,} {r.calls_per_s:>9,.0f} {r.items_per_s:>10,.0f} "
            f"{r.p50:>7.2f} {r.p90:>7.2f} {r.p99:>7.2f} {r.p999:>8.2f} {r.max:>8.1f}  {errors}"
        )
    return "\n".join(lines)


class Channels:
    """Several channels to one target, one per ``per_channel`` calls in flight."""

    def __init__(self, target: str, in_flight: int, per_channel: int = 16) -> None:
        count = max(1, math.ceil(in_flight / max(per_channel, 1)))
        self.channels = [
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(count)
        ]
        self._next = 0

    def __len__(self) -> int:
        return len(self.channels)

    def for_worker(self, worker: int) -> grpc.aio.Channel:
        return self.channels[worker % len(self.channels)]

    def round_robin(self) -> grpc.aio.Channel:
        self._next = (self._next + 1) % len(self.channels)
        return self.channels[self._next]

    async def ready(self, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await asyncio.gather(*(c.channel_ready() for c in self.channels))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels))


class Progress:
    """A live line on a terminal (one line per interval elsewhere): rate, totals, errors."""

    def __init__(self, recorder: Recorder, label: str, out: TextIO | None = sys.stderr) -> None:
        self._recorder = recorder
        self._label = label
        self._out = out
        self._tty = bool(out is not None and out.isatty())

    async def run(self, interval: float = 1.0) -> None:
        if self._out is None:
            return
        started = time.perf_counter()
        last_calls, last_time = 0, started
        try:
            while True:
                await asyncio.sleep(interval if self._tty else max(interval, 5.0))
                now = time.perf_counter()
                calls = self._recorder.total_calls()
                if calls < last_calls:  # the window was reset after the warm-up
                    last_calls = 0
                rate = (calls - last_calls) / (now - last_time)
                last_calls, last_time = calls, now
                self._write(
                    f"[{now - started:5.1f}s] {self._label}: {rate:8,.0f} calls/s, "
                    f"{calls:,} calls, {self._recorder.total_errors():,} errors, "
                    f"{self._recorder.in_flight} in flight"
                )
        finally:
            if self._tty:
                self._out.write("\n")
                self._out.flush()

    def _write(self, line: str) -> None:
        assert self._out is not None
        self._out.write(f"\r{line}\x1b[K" if self._tty else f"{line}\n")
        self._out.flush()


@dataclass(frozen=True)
class Plan:
    """How to drive: ``concurrency`` workers, or ``rate`` calls per second (open loop)."""

    duration: float
    concurrency: int = 64
    rate: float | None = None
    warmup: float = 0.0
    max_in_flight: int = 4096
    """Open loop only: calls due while this many are in flight are counted as ``late``."""
    steps: int | None = None
    """Stop after this many steps (warm-up included) even if ``duration`` has not passed."""


@dataclass(frozen=True)
class DriveResult:
    elapsed: float
    rows: list[RpcSummary]
    late: int
    """Open loop: scheduled calls not sent because ``max_in_flight`` were already out."""


async def drive(
    plan: Plan,
    step_for: Callable[[int], Step],
    recorder: Recorder,
    progress: Progress | None = None,
) -> DriveResult:
    """Run ``step_for(worker)(due)`` per the plan, measuring from after the warm-up.

    Closed loop: one step function per worker (0 .. concurrency-1). Open loop:
    ``step_for(-1)``, one function for every call (it spreads them over channels).
    """
    reporter = asyncio.create_task(progress.run()) if progress else None
    try:
        if plan.rate:
            late = await _open_loop(plan, step_for(-1), recorder)
        else:
            late = 0
            await _closed_loop(plan, step_for, recorder)
        elapsed = time.perf_counter() - recorder.started
    finally:
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
    return DriveResult(elapsed, summarize(recorder, elapsed), late)


async def _closed_loop(plan: Plan, step_for: Callable[[int], Step], recorder: Recorder) -> None:
    recorder.reset()
    measuring_from = recorder.started + plan.warmup
    stop_at = measuring_from + plan.duration
    limit = plan.steps if plan.steps is not None else math.inf
    started = 0

    async def worker(index: int) -> None:
        nonlocal started
        step = step_for(index)
        while (now := time.perf_counter()) < stop_at and started < limit:
            started += 1
            recorder.in_flight += 1
            try:
                await step(now)
            finally:
                recorder.in_flight -= 1

    async def end_warmup() -> None:
        await asyncio.sleep(plan.warmup)
        recorder.reset()

    warm = asyncio.create_task(end_warmup()) if plan.warmup > 0 else None
    await asyncio.gather(*(worker(i) for i in range(plan.concurrency)))
    if warm is not None:  # done before the warm-up ended (``steps``): keep what was measured
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)


async def _open_loop(plan: Plan, step: Step, recorder: Recorder) -> int:
    """Start calls at ``plan.rate`` per second; returns how many were skipped as late."""
    assert plan.rate
    interval = 1.0 / plan.rate
    tasks: set[asyncio.Task[None]] = set()
    late = 0
    recorder.reset()
    start = recorder.started
    warm_until = start + plan.warmup
    stop_at = warm_until + plan.duration
    warmed = plan.warmup <= 0
    sent = 0

    async def one(due: float) -> None:
        recorder.in_flight += 1
        try:
            await step(due)
        finally:
            recorder.in_flight -= 1

    limit = plan.steps if plan.steps is not None else math.inf
    while (now := time.perf_counter()) < stop_at and sent < limit:
        if not warmed and now >= warm_until:
            recorder.reset()
            late, warmed = 0, True
        while (due := start + sent * interval) <= now and sent < limit:
            sent += 1
            if len(tasks) >= plan.max_in_flight:
                late += 1
                continue
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(start + sent * interval - time.perf_counter(), 0))
    if tasks:
        await asyncio.gather(*tasks)
    return late


def status_name(code: grpc.StatusCode | None) -> str:
    return code.name if code is not None else "UNKNOWN"


_CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def code_name(number: int) -> str:
    """The name of a numeric status code (as in a ``google.rpc.Status``)."""
    return _CODE_NAMES.get(number, f"CODE_{number}")
