"""`rating-service verify`: passes on an honest ledger, names what was edited behind its back.

The edits go straight to the SQLite file with the standard library, as an
intruder (or a careless operator) would, after dropping the append-only
triggers that otherwise refuse them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import ServiceProcess
from support import all_entries, create_bucket, customer_on_rate_card, record

CUSTOMER = "mixed-co"
OTHER = "bystander"


async def mixed_workload(server: ServiceProcess) -> int:
    """Buckets, settled, pending, confirmed, released, reversed, consumed; the entry count."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        for customer in (CUSTOMER, OTHER):
            await customer_on_rate_card(stub, customer, settlement_window=timedelta(hours=1))
        await create_bucket(stub, CUSTOMER, "annual", 4)
        pending = pb.OUTCOME_STATE_PENDING
        for outcome_id in ("settled-1", "settled-2"):
            await stub.RecordOutcome(record(CUSTOMER, outcome_id))
        for outcome_id in ("pending-1", "pending-2"):
            await stub.RecordOutcome(record(CUSTOMER, outcome_id, state=pending))
        await stub.ConfirmOutcome(
            pb.ConfirmOutcomeRequest(customer_id=CUSTOMER, outcome_id="pending-1")
        )
        for outcome_id in ("settled-1", "pending-2"):
            await stub.ReverseOutcome(
                pb.ReverseOutcomeRequest(
                    customer_id=CUSTOMER, outcome_id=outcome_id, reason="reopened"
                )
            )
        await stub.ConsumeBucket(
            pb.ConsumeBucketRequest(
                customer_id=CUSTOMER, request_id="manual-1", outcome_type="resolution", quantity=2
            )
        )
        for outcome_id in ("charged-1", "charged-2", "charged-3"):
            await stub.RecordOutcome(record(CUSTOMER, outcome_id))
        await stub.RecordOutcome(record(CUSTOMER, "charged-4", state=pending))
        await stub.ReverseOutcome(
            pb.ReverseOutcomeRequest(
                customer_id=CUSTOMER, outcome_id="charged-1", reason="reopened"
            )
        )
        await stub.RecordOutcome(record(OTHER, "other-1"))
        return sum([len(await all_entries(stub, c)) for c in (CUSTOMER, OTHER)])


@contextlib.contextmanager
def tamper(database: Path) -> Iterator[sqlite3.Connection]:
    """An autocommitting connection to the file, with the append-only triggers dropped."""
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as db:
        for table in ("ledger_entries", "ledger_postings"):
            for action in ("update", "delete"):
                db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        yield db


def first_charged_sequence(db: sqlite3.Connection) -> int:
    """The sequence of the customer's first entry that moved money."""
    row = db.execute(
        "SELECT min(sequence) FROM ledger_entries WHERE customer_id = ? AND amount_nanos > 0",
        (CUSTOMER,),
    ).fetchone()
    sequence: int = row[0]
    return sequence


async def test_verify_exits_0_after_a_mixed_workload(server: ServiceProcess) -> None:
    """Buckets, settlements, holds, releases, reversals and draws all replay cleanly."""
    entries = await mixed_workload(server)
    assert server.terminate() == 0

    result = server.run("verify")

    assert result.returncode == 0, result.stdout
    assert f"{entries} entries" in result.stdout


async def test_verify_exits_0_while_the_server_is_running(server: ServiceProcess) -> None:
    """verify reads a consistent snapshot of a live database."""
    await mixed_workload(server)

    result = server.run("verify")

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("statement", ["UPDATE", "DELETE"])
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_postings"])
async def test_the_ledger_tables_refuse_changes_even_behind_the_service(
    server: ServiceProcess, table: str, statement: str
) -> None:
    """The triggers stop an UPDATE or DELETE made with plain SQL on the file."""
    await mixed_workload(server)
    assert server.terminate() == 0
    change = {
        "UPDATE": f"UPDATE {table} SET customer_id = customer_id WHERE customer_id = ?",
        "DELETE": f"DELETE FROM {table} WHERE customer_id = ?",
    }[statement]

    with (
        contextlib.closing(sqlite3.connect(server.database_path)) as db,
        pytest.raises(sqlite3.IntegrityError, match="append-only"),
    ):
        db.execute(change, (CUSTOMER,))


async def test_verify_fails_naming_the_customer_and_sequence_of_an_edited_entry_amount(
    server: ServiceProcess,
) -> None:
    """A charge changed in ledger_entries breaks that entry's hash."""
    await mixed_workload(server)
    assert server.terminate() == 0
    with tamper(server.database_path) as db:
        sequence = first_charged_sequence(db)
        db.execute(
            "UPDATE ledger_entries SET amount_nanos = amount_nanos - 1 "
            "WHERE customer_id = ? AND sequence = ?",
            (CUSTOMER, sequence),
        )

    result = server.run("verify")

    assert result.returncode != 0
    assert f"customer {CUSTOMER!r} sequence {sequence}:" in result.stdout, result.stdout


async def test_verify_fails_naming_the_customer_and_sequence_of_an_edited_posting(
    server: ServiceProcess,
) -> None:
    """A posting's amount changed in ledger_postings breaks that entry's hash and sum."""
    await mixed_workload(server)
    assert server.terminate() == 0
    with tamper(server.database_path) as db:
        sequence = first_charged_sequence(db)
        db.execute(
            "UPDATE ledger_postings SET amount = amount + 1 "
            "WHERE customer_id = ? AND sequence = ? AND position = 0",
            (CUSTOMER, sequence),
        )

    result = server.run("verify")

    assert result.returncode != 0
    assert f"customer {CUSTOMER!r} sequence {sequence}:" in result.stdout, result.stdout


async def test_verify_fails_naming_a_deleted_entry_as_a_gap(server: ServiceProcess) -> None:
    """An entry removed from the middle of the chain shows as a gap at the next sequence."""
    await mixed_workload(server)
    assert server.terminate() == 0
    with tamper(server.database_path) as db:
        sequence = first_charged_sequence(db)
        for table in ("ledger_postings", "ledger_entries"):
            db.execute(
                f"DELETE FROM {table} WHERE customer_id = ? AND sequence = ?", (CUSTOMER, sequence)
            )

    result = server.run("verify")

    assert result.returncode != 0
    assert f"customer {CUSTOMER!r} sequence {sequence + 1}:" in result.stdout, result.stdout


async def test_verify_fails_naming_an_edited_stored_balance(server: ServiceProcess) -> None:
    """Balances are a projection, not append-only: an edit shows as that balance's mismatch."""
    await mixed_workload(server)
    assert server.terminate() == 0
    with contextlib.closing(sqlite3.connect(server.database_path, isolation_level=None)) as db:
        db.execute(
            "UPDATE balances SET amount = amount + 1 "
            "WHERE customer_id = ? AND account = 'bucket:annual:drawn'",
            (CUSTOMER,),
        )

    result = server.run("verify")

    assert result.returncode != 0
    assert (
        f"customer {CUSTOMER!r}: balance bucket:annual:drawn (unit:resolution)" in result.stdout
    ), result.stdout


async def test_verify_names_only_the_customer_whose_ledger_was_edited(
    server: ServiceProcess,
) -> None:
    """The other customer's ledger still replays: no FAIL line mentions it."""
    await mixed_workload(server)
    assert server.terminate() == 0
    with tamper(server.database_path) as db:
        db.execute(
            "UPDATE ledger_entries SET amount_nanos = amount_nanos - 1 "
            "WHERE customer_id = ? AND sequence = ?",
            (CUSTOMER, first_charged_sequence(db)),
        )

    result = server.run("verify")

    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failures
    assert [line for line in failures if OTHER in line] == []
