"""What the API's short reads cost, in CPU time: ``python -m bench.read_cost``.

SQLite's reads run on threads of their own, and each statement hands the
interpreter lock back and forth; how many threads share the short reads (a
quote, a balance) decides how much of that there is. The store runs in this
process on a fresh SQLite file with ``bench.writer_cost``'s 200 customers, and
answers ``--reads`` QuoteCost and GetBalance calls, 16 in flight, two ways in
the same run: on the short reads' own thread, as served, and on the three
reader threads that the long reads use, as before. It prints, per call, the
whole process's CPU time and the wall time, as the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.writer_cost import CUSTOMERS, NOW, setup_store
from rating_service.domain.commands import GetBalance, QuoteCost
from rating_service.service.store import LedgerStore

IN_FLIGHT = 16


async def _measure(calls: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """(process CPU, wall), each in µs per call."""

    async def worker(first: int) -> None:
        for n in range(first, calls, IN_FLIGHT):
            await call(n)

    process, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(IN_FLIGHT)))
    return (time.process_time() - process) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


async def run_once(reads: int) -> dict[str, tuple[float, float]]:
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="read-cost-") as workdir:
        served, engines = await setup_store(Path(workdir) / "rating.db")
        shared = LedgerStore(dataclasses.replace(engines, short_reads=None))
        try:
            for label, store in (("own thread", served), ("shared reader threads", shared)):

                async def quote(n: int, store: LedgerStore = store) -> object:
                    cmd = QuoteCost(f"c{n % CUSTOMERS}", "resolution", 3, None)
                    return await store.quote_cost(cmd, NOW)

                async def balance(n: int, store: LedgerStore = store) -> object:
                    return await store.get_balance(GetBalance(f"c{n % CUSTOMERS}"), NOW)

                await _measure(reads // 5, quote)  # warm up
                results[f"QuoteCost, {label}"] = await _measure(reads, quote)
                results[f"GetBalance, {label}"] = await _measure(reads, balance)
        finally:
            await served.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.read_cost", description=__doc__)
    parser.add_argument("--reads", type=int, default=5_000, help="calls of each kind per run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [asyncio.run(run_once(args.reads)) for _ in range(args.repeat)]
    print(f"µs per call, {IN_FLIGHT} in flight, median of {args.repeat} runs: process CPU / wall")
    for name in runs[0]:
        cpu, wall = (statistics.median(r[name][i] for r in runs) for i in range(2))
        print(f"  {name:40} {cpu:7.1f} / {wall:7.1f}")


if __name__ == "__main__":
    main()
