"""What the ledger writer costs per outcome, in CPU time: ``python -m bench.writer_cost``.

The throughput benchmark's figures move with whatever else the machine runs;
CPU time spent by the writer's thread per outcome hardly does, so each lift
of the writer can be measured alone, before and after, on a busy machine.
The store runs in this process on a fresh SQLite file (WAL, synchronous=FULL,
as served) with 200 customers on one rate card, a quarter of them with a
bucket, and records settled outcomes two ways: 64 single calls in flight
(the group commit gathers them) and calls of 1,000 outcomes, 4 in flight.
It prints, per outcome, the writer thread's CPU time, the whole process's
CPU time and the wall time, as the median of ``--repeat`` runs. With
``--bookkeeping-every MS`` a reporter-like job (parking a customer, as the
reporter's bookkeeping writes its ``stripe_*`` tables) joins the writer's queue
every MS milliseconds throughout, as a reporter catching up would.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rating_service.domain.buckets import BucketSource
from rating_service.domain.commands import (
    CreateBucket,
    OutcomeState,
    PutCustomer,
    PutRateCard,
    RecordOutcome,
)
from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price
from rating_service.ledger import outbox
from rating_service.ledger.engine import Engines, create_engines
from rating_service.ledger.migrate import upgrade
from rating_service.service.store import LedgerStore

CUSTOMERS = 200
SINGLES_IN_FLIGHT = 64
BATCH = 1000
BATCHES_IN_FLIGHT = 4
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _writer_cpu() -> float:
    """CPU seconds of the ledger writer's thread so far."""
    for thread in threading.enumerate():
        if thread.name.startswith("ledger-writer") and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


async def setup_store(database: Path) -> tuple[LedgerStore, Engines]:
    """A started store on a fresh SQLite file, with the customers, card and buckets above."""
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    engines = create_engines(url)
    store = LedgerStore(engines)
    store.start()
    price = Price("resolution", Money.of("0.99", "USD"), timedelta(hours=24))
    await store.put_rate_card(PutRateCard("card", None, "USD", (price,)), NOW)
    for n in range(CUSTOMERS):
        await store.put_customer(PutCustomer(f"c{n}", "", "card"), NOW)
        if n % 4 == 0:
            await store.create_bucket(
                CreateBucket(
                    f"c{n}",
                    f"b{n}",
                    "resolution",
                    10_000_000,
                    None,
                    None,
                    NOW + timedelta(days=365),
                    None,
                    BucketSource.PURCHASE,
                    0,
                ),
                NOW,
            )
    return store, engines


def _command(serial: int) -> RecordOutcome:
    outcome_id = f"o{serial}"
    return RecordOutcome(
        f"c{serial % CUSTOMERS}",
        outcome_id,
        "resolution",
        None,
        OutcomeState.CONFIRMED,
        {"conversation_id": outcome_id, "answer_id": f"ans-{outcome_id}"},
    )


async def _measure(
    outcomes: int, workers: int, per_call: int, send: Callable[[int], Awaitable[object]]
) -> tuple[float, float, float]:
    """(writer CPU, process CPU, wall), each in µs per outcome."""
    calls = itertools.count()
    total_calls = outcomes // per_call

    async def worker() -> None:
        while (n := next(calls)) < total_calls:
            await send(n)

    writer, process, wall = _writer_cpu(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    done = total_calls * per_call
    return (
        (_writer_cpu() - writer) / done * 1e6,
        (time.process_time() - process) / done * 1e6,
        (time.perf_counter() - wall) / done * 1e6,
    )


async def _bookkeeping(store: LedgerStore, every: float) -> None:
    """A reporter's write job every ``every`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every)
        await store.write(lambda conn: outbox.park(conn, "c0", "bench", NOW))


async def run_once(
    outcomes: int, bookkeeping_every: float
) -> dict[str, tuple[float, float, float]]:
    with tempfile.TemporaryDirectory(prefix="writer-cost-") as workdir:
        store, _ = await setup_store(Path(workdir) / "rating.db")
        serial = itertools.count()
        reporter = (
            asyncio.create_task(_bookkeeping(store, bookkeeping_every))
            if bookkeeping_every
            else None
        )
        try:

            async def single(_: int) -> object:
                return await store.record_outcome(_command(next(serial)), NOW)

            async def batch(_: int) -> object:
                return await store.record_outcomes(
                    [_command(next(serial)) for _ in range(BATCH)], NOW
                )

            await _measure(2000, SINGLES_IN_FLIGHT, 1, single)  # warm up
            return {
                "RecordOutcome, 64 in flight": await _measure(
                    outcomes, SINGLES_IN_FLIGHT, 1, single
                ),
                "RecordOutcomes x1000, 4 in flight": await _measure(
                    outcomes * 2, BATCHES_IN_FLIGHT, BATCH, batch
                ),
            }
        finally:
            if reporter is not None:
                reporter.cancel()
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.writer_cost", description=__doc__)
    parser.add_argument("--outcomes", type=int, default=10_000, help="single calls per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--bookkeeping-every",
        type=float,
        default=0.0,
        metavar="MS",
        help="a reporter-like write job every MS milliseconds (default: none)",
    )
    args = parser.parse_args()
    every = args.bookkeeping_every / 1000
    runs = [asyncio.run(run_once(args.outcomes, every)) for _ in range(args.repeat)]
    print(f"µs per outcome, median of {args.repeat} runs: writer thread CPU / process CPU / wall")
    for name in runs[0]:
        writer, process, wall = (statistics.median(r[name][i] for r in runs) for i in range(3))
        print(f"  {name:36} {writer:7.1f} / {process:7.1f} / {wall:7.1f}")


if __name__ == "__main__":
    main()
