"""The load generator: it runs against a real server, and its ledger check can fail.

``python -m bench.load`` is what users point at a server; these run it for a
few seconds against the in-process test server (the real command, as a child
process, and the same code in-process with batches) and show that the final
check passes on a correct ledger and reports a wrong one.
"""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

from bench.load import EntryView, Ledger, LoadConfig, Mix, check_customer, run
from rating_service.app import Service

ROOT = Path(__file__).resolve().parents[2]
EVERY_OPERATION = "settled=50,pending=20,reverse=10,quote=10,consume=10"


async def test_the_command_drives_every_rpc_and_finds_the_ledger_exact(service: Service) -> None:
    """Three seconds of the mix, a fifth of writes resent: all acknowledged, all in the ledger once."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        "--target",
        f"127.0.0.1:{service.port}",
        "--duration",
        "3",
        "--concurrency",
        "8",
        "--customers",
        "10",
        "--mix",
        EVERY_OPERATION,
        "--retry-share",
        "0.2",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    output = stdout.decode()

    assert process.returncode == 0, output + stderr.decode()
    for rpc in ("RecordOutcome ", "ReverseOutcome ", "QuoteCost ", "ConsumeBucket "):
        assert rpc in output, output
    assert "0 problems" in output
    assert "nothing that failed is: OK" in output, output
    assert "rating-service verify" in output


async def test_batches_are_checked_item_by_item(service: Service) -> None:
    """RecordOutcomes of 50: every item acknowledged is in the ledger once; resends replay."""
    config = LoadConfig(
        target=f"127.0.0.1:{service.port}",
        duration=1.5,
        concurrency=2,
        customers=5,
        mix=Mix.parse("settled=80,pending=20"),
        retry_share=0.3,
        batch=50,
        seed=7,
    )

    report = await run(config, out=io.StringIO(), progress=None)

    rows = {r.rpc: r for r in report.drive.rows}
    assert set(rows) == {"RecordOutcomes"}
    assert rows["RecordOutcomes"].errors == {}
    assert rows["RecordOutcomes"].items_per_s > 0
    assert report.verification is not None
    assert report.verification.ok, report.verification.problems
    assert report.verification.outcomes >= 50
    assert report.replays_ok > 0


def test_the_check_reports_a_missing_an_extra_and_a_moved_entry() -> None:
    """Acknowledged but absent, failed but present, acknowledged at another sequence."""
    ledger = Ledger()
    ledger.outcomes.ack("c1", "run-o1", 1, pending=False)
    ledger.outcomes.ack("c1", "run-o2", 2, pending=True)
    ledger.outcomes.ack("c1", "run-o3", 3, pending=False)
    ledger.outcomes.fail("c1", "run-o4", "INVALID_ARGUMENT", ambiguous=False)
    entries = [
        EntryView(1, "OUTCOME_RATED", "run-o1", ""),
        EntryView(2, "OUTCOME_RATED", "run-o2", ""),  # acknowledged as a hold
        EntryView(3, "OUTCOME_RATED", "run-o4", ""),  # failed, yet written; o3 is missing
    ]

    problems = check_customer("c1", entries, ledger, "run-").problems

    assert len(problems) == 3, problems
    assert any("run-o2" in p and "OUTCOME_HELD" in p for p in problems)
    assert any("run-o3" in p and "nothing" in p for p in problems)
    assert any("run-o4" in p and "INVALID_ARGUMENT" in p for p in problems)


def test_the_check_accepts_settlement_and_unknown_fates_and_ignores_other_runs() -> None:
    """A hold later settled is fine; a timed-out call may or may not be written; others' ids."""
    ledger = Ledger()
    ledger.outcomes.ack("c1", "run-o1", 1, pending=True)
    ledger.outcomes.fail("c1", "run-o2", "DEADLINE_EXCEEDED", ambiguous=True)
    ledger.outcomes.fail("c1", "run-o3", "UNAVAILABLE", ambiguous=True)
    ledger.reversals.ack("c1", "run-o1", 4, pending=True)
    ledger.consumptions.ack("c1", "run-r9", 5)
    entries = [
        EntryView(1, "OUTCOME_HELD", "run-o1", ""),
        EntryView(2, "OUTCOME_RATED", "run-o2", ""),
        EntryView(3, "OUTCOME_RATED", "bulk-000000001", ""),
        EntryView(4, "OUTCOME_RELEASED", "run-o1", ""),
        EntryView(5, "BUCKET_CONSUMED", "", "run-r9"),
    ]

    check = check_customer("c1", entries, ledger, "run-")

    assert check.problems == []
    assert (check.ambiguous_written, check.ambiguous_absent) == (1, 1)


def test_a_gap_in_the_sequence_is_a_problem() -> None:
    ledger = Ledger()
    entries = [EntryView(1, "BUCKET_CREATED", "", ""), EntryView(3, "BUCKET_CREATED", "", "")]

    assert check_customer("c1", entries, ledger, "run-").problems == [
        "c1: sequence 3 where 2 was due"
    ]


def test_the_mix_parses_and_picks_by_share() -> None:
    mix = Mix.parse("settled=70, pending=20,reverse=5,quote=5")

    assert [mix.pick(u) for u in (0.0, 0.69, 0.71, 0.91, 0.96, 0.999)] == [
        "settled",
        "settled",
        "pending",
        "reverse",
        "quote",
        "quote",
    ]
    assert abs(mix.pending_share() - 20 / 90) < 1e-9
