"""Pages a commit writes: ``python -m bench.pages_per_commit [--db PATH]``.

Why: a commit's cost on SQLite follows the pages it writes (each goes to the
WAL and is fsynced, then copied into the database file by a checkpoint), and on
a long ledger each customer's newest keys sit on their own leaf of every
per-customer index, so a layout that looks cheaper may not be. Throughput
figures move with whatever else the machine runs; the page count does not. So
a change of keys, indexes or table layout is measured here, before and after:
the settled-outcome floor of ``bench.sqlite_yardstick`` (1,000 outcomes a
transaction over 200 customers, on the schema of the code at hand), first on a
fresh ledger after ``--warmup`` transactions (where the throughput benchmark's
empty ledger ends up), then, with ``--db``, appended to that ledger (a copy of a
``bench.bulkfill`` file: it grows by what is written). Prints the median pages
and milliseconds per commit and per checkpoint. About a minute. ``--page-size``
sets the fresh ledger's; for the other, ``VACUUM`` a copy after
``PRAGMA journal_mode=DELETE; PRAGMA page_size=N``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.sqlite_yardstick import CommitPages, measure_commit_pages


def line(label: str, result: CommitPages) -> str:
    ms = statistics.median
    return (
        f"{label:<28} {result.median_pages:>7,.0f} pages/commit "
        f"({result.median_kib:,.0f} KiB)   "
        f"commit {ms(result.commit_seconds) * 1000:6.1f} ms   "
        f"checkpoint {ms(result.checkpoint_seconds) * 1000:6.1f} ms   "
        f"(medians of {len(result.pages)}, {result.outcomes_per_transaction:,} outcomes each)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages_per_commit", description=__doc__)
    parser.add_argument("--db", type=Path, help="also append to this ledger (use a copy)")
    parser.add_argument("--transactions", type=int, default=20, help="counted, each ledger")
    parser.add_argument("--warmup", type=int, default=80, help="uncounted, on the fresh ledger")
    parser.add_argument(
        "--page-size", type=int, help="the fresh ledger's page size (SQLite's default: 4096)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rating-pages-") as workdir:
        fresh = measure_commit_pages(
            Path(workdir) / "fresh.db",
            args.transactions,
            warmup=args.warmup,
            page_size=args.page_size,
        )
    print(line(f"fresh ledger (+{args.warmup:,} txns)", fresh), flush=True)
    if args.db:
        big = measure_commit_pages(args.db, args.transactions, existing=True)
        print(line(args.db.name, big), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
