"""Re-pricing a month: ``python -m bench.simulate [--outcomes N] [--customers C]``.

SimulateRateCard must re-price a month of 1,000,000 outcomes over 1,000
customers in under 10 seconds. It reads the ledger's daily usage counts
(``usage_days``, one row per customer, day, outcome type and price), not the
entries, so its cost follows customers x days, not outcomes. To show what
that buys, the same run measures, on the same file:

1. the yardstick of any call: an empty round trip (the service's health
   Check), the median of 50;
2. the yardstick of a scan: raw stdlib sqlite3 summing the month's settled
   entries per customer in SQL (no Python per row): the least any re-pricing
   that reads entries would pay;

then fills the ledger with ``bench.bulkfill``: the outcomes spread evenly
over the whole of last month (every customer every day, so the month holds
customers x days counts, the most it can), on rate card ``bench-standard`` at
0.99 USD. It starts the service on it
as an operator would, and times SimulateRateCard over the rate card's
customers at the actual price and at double it (and over the same customers
named in a list), checking that the actual total is outcomes x 0.99 and the
doubled one exactly twice that. Figures are printed as ratios to (1) and (2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rating_client import decimal_to_money, money_to_decimal
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from bench.bulkfill import RATE_CARD_ID, UNIT_PRICE, fill, throttled_printer
from bench.throughput import running_service, say, workspace
from rating_service.domain.billing import month_start
from rating_service.ledger.codec import to_micros

TARGET_SECONDS = 10.0
RUNS = 3


def _draft(price: str, month: datetime, **selector: Any) -> pb.SimulateRateCardRequest:
    request = pb.SimulateRateCardRequest(
        currency_code="USD",
        period_start=to_timestamp(month),
        prices=[
            pb.Price(outcome_type="resolution", unit_price=decimal_to_money(Decimal(price), "USD"))
        ],
        **selector,
    )
    return request


def to_timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def scan_month(database: Path, start: datetime, end: datetime) -> tuple[float, int, int]:
    """Seconds to sum the month's settled entries per customer in SQL; outcomes and nanos."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        began = time.perf_counter()
        rows = conn.execute(
            "SELECT customer_id, count(*), sum(amount_nanos) FROM ledger_entries"
            " WHERE kind = 'OUTCOME_RATED' AND occurred_at >= ? AND occurred_at < ?"
            " GROUP BY customer_id",
            (to_micros(start), to_micros(end)),
        ).fetchall()
        seconds = time.perf_counter() - began
    return seconds, sum(r[1] for r in rows), sum(r[2] for r in rows)


def counts_in(database: Path, start: datetime, end: datetime) -> int:
    """How many daily usage counts (usage_days rows) the month holds: what the RPC reads."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        found: int = conn.execute(
            "SELECT count(*) FROM usage_days WHERE day >= ? AND day < ?",
            (to_micros(start), to_micros(end)),
        ).fetchone()[0]
    return found


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], Any]:
    seconds, answer = [], None
    for _ in range(runs):
        began = time.perf_counter()
        answer = await call()
        seconds.append(time.perf_counter() - began)
    return seconds, answer


async def benchmark(args: argparse.Namespace, workdir: Path) -> bool:
    database = workdir / "simulate.db"
    end = month_start(datetime.now(UTC))
    month = month_start(end - timedelta(days=1))
    per_customer = -(-args.outcomes // args.customers)
    say(f"filling {args.outcomes:,} settled outcomes for {args.customers:,} customers")
    filled = fill(
        database,
        outcomes=args.outcomes,
        customers=args.customers,
        start=month,
        interval=(end - month) / per_customer,
        progress=throttled_printer(),
    )
    say(filled.summary())
    say("yardstick: raw sqlite3 scan of the month's entries, summed per customer in SQL")
    scan_seconds, scanned, _ = scan_month(database, month, end)
    counts = counts_in(database, month, end)

    async with (
        running_service(database, workdir, "simulate") as (server, _sampler),
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        say("yardstick: empty round trip (health Check), median of 50")
        empty, _ = await timed(lambda: health.Check(health_pb2.HealthCheckRequest()), 50)
        say("SimulateRateCard over the rate card's customers, at 0.99 and at 1.98")
        card = {"rate_card_id": RATE_CARD_ID}
        same, same_answer = await timed(
            lambda: stub.SimulateRateCard(_draft("0.99", month, **card)), RUNS
        )
        double, double_answer = await timed(
            lambda: stub.SimulateRateCard(_draft("1.98", month, **card)), RUNS
        )
        named = {"customer_list": pb.CustomerList(customer_ids=list(filled.customer_ids))}
        listed, listed_answer = await timed(
            lambda: stub.SimulateRateCard(_draft("1.98", month, **named)), RUNS
        )

    actual = money_to_decimal(same_answer.actual_total)
    expected = UNIT_PRICE.amount * filled.outcomes
    checks = {
        f"actual total = {filled.outcomes:,} x 0.99 = {expected}": actual == expected,
        "at the actual price, no difference": money_to_decimal(same_answer.difference_total) == 0,
        "at double the price, exactly double": money_to_decimal(double_answer.simulated_total)
        == 2 * actual,
        "named list = rate card": listed_answer.simulated_total == double_answer.simulated_total,
        f"{len(same_answer.customers):,} customers answered": len(same_answer.customers)
        == filled.customers,
    }
    empty_s = statistics.median(empty)
    worst = max(same + double + listed)
    print(
        f"SimulateRateCard: {filled.outcomes:,} outcomes over {filled.customers:,} customers, "
        f"one month ({month:%Y-%m}); Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
    )
    print("yardsticks (this machine, this run)")
    print(f"  empty round trip (health Check), median       {empty_s * 1000:9.2f} ms")
    print(
        f"  raw sqlite3 scan of the month's entries         {scan_seconds * 1000:9.2f} ms"
        f"   ({scanned:,} entries summed per customer in SQL)"
    )
    print(f"SimulateRateCard (seconds per call, each of 3 runs; it reads {counts:,} daily counts)")
    for label, runs in (("rate card, at 0.99", same), ("rate card, at 1.98", double)):
        _line(label, runs, empty_s, scan_seconds)
    _line(f"{filled.customers:,} customers named, at 1.98", listed, empty_s, scan_seconds)
    print("checks")
    for label, ok in checks.items():
        print(f"  {label:60s} {'OK' if ok else 'FAILED'}")
    met = worst < TARGET_SECONDS
    print(
        f"target: every call < {TARGET_SECONDS:.0f} s: worst {worst:.3f} s  "
        f"{'met' if met else 'MISSED'}"
    )
    return met and all(checks.values())


def _line(label: str, runs: list[float], empty_s: float, scan_s: float) -> None:
    median = statistics.median(runs)
    print(
        f"  {label:32s} {' '.join(f'{s:7.3f}' for s in runs)} s"
        f"   = {median / empty_s:7.1f} x empty call, {median / scan_s:6.3f} x the scan"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__)
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with workspace(args.keep) as work:
        return 0 if asyncio.run(benchmark(args, work)) else 1


if __name__ == "__main__":
    sys.exit(main())
