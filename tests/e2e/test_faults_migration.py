"""A SIGKILL in the middle of a migration: running ``migrate`` or ``serve`` again finishes it,
the ledger written before is whole, and ``rating-service verify`` passes.

A hook (``fault_hooks/sitecustomize.py``, put on the process's PYTHONPATH) holds the
migration before a chosen statement until the test kills the process there, so the kill
lands inside the migration every time, whatever the machine's speed.

The main scenario, run once per storage engine: a server records outcomes, the database is
taken back to revision 0001 (the ledger's tables and rows stay), and ``migrate`` is killed
three times in a row: in the middle of revision 0002, after its statements but before its
stamp in ``alembic_version``, and before the last stamp. Then ``migrate`` runs to the end,
a server starts on the database and records more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from alembic import command
from faults import CALL_TIMEOUT, OK, PRICES, answer_of, kinds_and_keys, ledger
from rating_client import LedgerEntry, NewOutcome, OutcomeRecorded, RatingClient
from service_process import COMMAND_TIMEOUT, Launcher, ServiceProcess
from support import fresh_postgres_database

from rating_service.ledger.migrate import alembic_config

pytestmark = pytest.mark.faults

HOOKS = Path(__file__).parent / "fault_hooks"
POSTGRES_URL = os.environ.get("RATING_TEST_POSTGRES_URL", "")
CUSTOMER = "migrating-co"
OUTCOMES = 300
OLD_REVISION = "0001"

KILLS_ON_A_LEDGER = [
    ("CREATE", 2),  # revision 0002 has created its first table, not its second
    ("UPDATE alembic_version", 1),  # 0002's statements have run, its stamp has not
    ("UPDATE alembic_version", 2),  # 0002 is stamped (in its own transaction or not), 0003 not
]
"""(a statement to stop before, which match of it): in the order the kills come."""
KILLS_ON_A_FRESH_DATABASE = [
    ("CREATE TABLE", 4),  # in the middle of revision 0001
    ("INSERT INTO alembic_version", 1),  # 0001's statements have run, its stamp has not
]


@dataclass
class Kill:
    statement: str
    """The statement the process was held before (what the hook wrote; empty if never)."""
    exit_code: int
    """-9: killed there; anything else: it ended before reaching that statement."""
    output: str


def kill_while_migrating(server: ServiceProcess, which: str, before: str, nth: int) -> Kill:
    """Run ``rating-service <which>`` until its migration reaches the ``nth`` statement
    matching ``before``, then SIGKILL it there (or when it ends or takes too long)."""
    paused = server.workdir / "paused"
    paused.unlink(missing_ok=True)
    env = {
        **server.env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")])),
        "FAULT_PAUSE_BEFORE": before,
        "FAULT_PAUSE_NTH": str(nth),
        "FAULT_PAUSED": str(paused),
    }
    with (server.workdir / f"killed-{which}.log").open("ab+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rating_service", which],
            env=env,
            cwd=server.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not paused.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.kill()
        exit_code = process.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
    return Kill(paused.read_text() if paused.exists() else "", exit_code, output)


@dataclass
class Migration:
    """What a killed and resumed migration left."""

    acknowledged: set[str] = field(default_factory=set)
    kills: list[Kill] = field(default_factory=list)
    migrate_code: int | None = None
    migrate_output: str = ""
    entries: list[LedgerEntry] = field(default_factory=list, repr=False)
    new_outcome: str = ""
    exit_code: int | None = None
    verify_code: int | None = None
    verify_output: str = ""


async def _record(server: ServiceProcess, count: int) -> set[str]:
    """A customer with a bucket, and ``count`` outcomes recorded for it: their ids."""
    ids = [f"before-{i}" for i in range(count)]
    async with RatingClient(server.address, timeout=CALL_TIMEOUT) as client:
        await client.put_rate_card(rate_card_id="card", currency_code="USD", prices=PRICES)
        await client.put_customer(customer_id=CUSTOMER, rate_card_id="card")
        await client.create_bucket(
            customer_id=CUSTOMER, bucket_id="prepaid", outcome_type="resolution", quantity=100
        )
        for start in range(0, count, 100):
            results = await client.record_outcomes(
                outcomes=[
                    NewOutcome(customer_id=CUSTOMER, outcome_id=i, outcome_type="resolution")
                    for i in ids[start : start + 100]
                ]
            )
            assert all(isinstance(r, OutcomeRecorded) for r in results), results
    return set(ids)


async def _look_and_record(server: ServiceProcess) -> tuple[list[LedgerEntry], str]:
    """The customer's ledger, and the answer to one more outcome."""
    async with RatingClient(server.address, timeout=CALL_TIMEOUT) as client:
        entries = await ledger(client, CUSTOMER)
        answer = await answer_of(
            client.record_outcome(
                customer_id=CUSTOMER, outcome_id="after-migration", outcome_type="resolution"
            )
        )
    return entries, answer


@contextlib.contextmanager
def _database(engine: str) -> Iterator[dict[str, str]]:
    """The server's environment for a fresh database of ``engine`` (SQLite: the default file)."""
    if engine == "sqlite":
        yield {}
        return
    if not POSTGRES_URL:
        pytest.skip("RATING_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    with fresh_postgres_database(POSTGRES_URL) as url:
        yield {"RATING_DATABASE_URL": url}


def _kill_and_resume(server: ServiceProcess) -> Migration:
    migration = Migration(acknowledged=asyncio.run(_record(server, OUTCOMES)))
    assert server.terminate() == 0, server.output()
    command.downgrade(alembic_config(server.env["RATING_DATABASE_URL"]), OLD_REVISION)
    migration.kills = [
        kill_while_migrating(server, "migrate", before, nth) for before, nth in KILLS_ON_A_LEDGER
    ]
    migrated = server.run("migrate")
    migration.migrate_code, migration.migrate_output = migrated.returncode, migrated.stdout
    if migrated.returncode != 0:
        return migration  # the tests below say what is missing
    server.start()
    migration.entries, migration.new_outcome = asyncio.run(_look_and_record(server))
    migration.exit_code = server.terminate()
    verified = server.run("verify")
    migration.verify_code, migration.verify_output = verified.returncode, verified.stdout
    return migration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def migration(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Migration]:
    """The scenario, once per engine: record, go back to 0001, kill ``migrate`` three times,
    migrate, serve."""
    launcher = Launcher(tmp_path_factory.mktemp(f"migration-{request.param}"))
    with _database(str(request.param)) as env:
        try:
            yield _kill_and_resume(launcher(env=env))
        finally:
            launcher.stop_all()


def _killed_inside(kills: list[Kill]) -> list[tuple[int, bool]]:
    """(exit code, whether it was held at its statement) of each run."""
    return [(k.exit_code, bool(k.statement)) for k in kills]


def test_each_kill_came_inside_the_migration(migration: Migration) -> None:
    """Every run reached its statement (the runs before it left a schema it could migrate)
    and died of SIGKILL there."""
    assert _killed_inside(migration.kills) == [(-9, True)] * len(KILLS_ON_A_LEDGER), [
        k.output for k in migration.kills
    ]


def test_migrate_finishes_what_the_killed_runs_began(migration: Migration) -> None:
    """No half-built schema is left behind: no table "already exists", the schema is current."""
    assert migration.migrate_code == 0, migration.migrate_output


def test_the_ledger_written_before_the_migration_is_whole(migration: Migration) -> None:
    """Every outcome recorded before is there exactly once, and the bucket once."""
    counts = kinds_and_keys(migration.entries)

    assert {o: counts[("OUTCOME_RATED", o)] for o in migration.acknowledged} == dict.fromkeys(
        migration.acknowledged, 1
    )
    assert counts[("BUCKET_CREATED", "prepaid")] == 1
    assert len(migration.entries) == OUTCOMES + 1


def test_a_server_on_the_migrated_database_records_outcomes(migration: Migration) -> None:
    assert migration.new_outcome == OK


def test_the_server_stops_cleanly_and_verify_passes(migration: Migration) -> None:
    assert migration.exit_code == 0
    assert migration.verify_code == 0, migration.verify_output


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_serve_killed_while_migrating_a_fresh_database_serves_when_started_again(
    launch: Launcher, engine: str
) -> None:
    """``serve`` migrates at start: killed twice doing so, it still starts the third time."""
    with _database(engine) as env:
        server = launch(env=env, start=False)
        kills = [
            kill_while_migrating(server, "serve", before, nth)
            for before, nth in KILLS_ON_A_FRESH_DATABASE
        ]
        assert _killed_inside(kills) == [(-9, True)] * len(KILLS_ON_A_FRESH_DATABASE), [
            k.output for k in kills
        ]

        server.start()
        recorded = asyncio.run(_record(server, 20))
        entries, _ = asyncio.run(_look_and_record(server))
        exit_code = server.terminate()
        verified = server.run("verify")

    assert {e.outcome_id for e in entries if e.kind == "OUTCOME_RATED"} == recorded
    assert exit_code == 0
    assert verified.returncode == 0, verified.stdout
