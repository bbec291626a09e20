"""Storage faults under load: the disk turns read-only or fills up, PostgreSQL fails over to a
server that only reads.

One scenario per fault, run once for the module through a real ``rating-service serve``
and the Python client: lanes record outcomes (one per call, or eight per RecordOutcomes)
without retrying; once 40 are acknowledged the fault is applied; once the service has
answered 20 calls UNAVAILABLE, one call of every other writing RPC and of the reads is
made; then the fault is removed, and the same process must acknowledge 40 more. Last,
every writing call and every outcome is sent again (now retrying), the server is stopped
with SIGTERM and ``rating-service verify`` runs. The tests below each check one thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from faults import (
    CALL_TIMEOUT,
    OK,
    PRICES,
    STORE_UNAVAILABLE,
    Fault,
    FullDisk,
    ImmutableFiles,
    Load,
    ReadOnlyPostgres,
    answer_of,
    kinds_and_keys,
    ledger,
    mounted,
    postgres_on_small_disk,
)
from rating_client import LedgerEntry, OutcomeRecorded, RatingClient
from service_process import Launcher, ServiceProcess
from support import fresh_postgres_database, psycopg_free_url

pytestmark = pytest.mark.faults

POSTGRES_URL = os.environ.get("RATING_TEST_POSTGRES_URL", "")
CARD = "fault-card"
CUSTOMER = "fault-co"
BUCKET = "prepaid"
"""Covers the load's first outcomes (resolution); the rest are charged."""
RESERVE = "reserve"
"""Escalation units, drawn by the pending outcome and by ConsumeBucket."""
PENDING = "pending-1"
PROBE_EFFECTIVE = datetime(2020, 1, 1, tzinfo=UTC)
BEFORE, DURING, AFTER = 40, 20, 40
"""Acknowledged before the fault, refused during it, acknowledged after it."""
ENOUGH = 2000
"""Answers in a phase after which the scenario goes on even if the service never did what
it should (answer UNAVAILABLE, recover): the tests below then say what it did instead."""

READ_ONLY = ("sqlite-read-only", "postgresql-read-only")
DISK_FULL = ("sqlite-disk-full", "postgresql-disk-full")


@dataclass
class Ride:
    """What the clients saw through one fault, and what the ledger holds afterwards."""

    load: Load
    reversed_outcome: str = ""
    writes_during: dict[str, str] = field(default_factory=dict)
    reads_during: dict[str, str] = field(default_factory=dict)
    writes_after: dict[str, str] = field(default_factory=dict)
    entries_before_retry: list[LedgerEntry] = field(default_factory=list, repr=False)
    retried: dict[str, OutcomeRecorded] = field(default_factory=dict, repr=False)
    entries_final: list[LedgerEntry] = field(default_factory=list, repr=False)
    starts: int = 0
    exit_code: int | None = None
    verify_code: int | None = None
    verify_output: str = ""


async def _set_up(client: RatingClient) -> None:
    await client.put_rate_card(rate_card_id=CARD, currency_code="USD", prices=PRICES)
    await client.put_customer(customer_id=CUSTOMER, rate_card_id=CARD)
    await client.create_bucket(
        customer_id=CUSTOMER, bucket_id=BUCKET, outcome_type="resolution", quantity=100
    )
    await client.create_bucket(
        customer_id=CUSTOMER, bucket_id=RESERVE, outcome_type="escalation", quantity=10
    )
    await client.record_outcome(
        customer_id=CUSTOMER, outcome_id=PENDING, outcome_type="escalation", state="PENDING"
    )


async def _writes(client: RatingClient, reversed_outcome: str) -> dict[str, str]:
    """One call of every writing RPC but RecordOutcome(s), each with its idempotency key."""
    return {
        "PutRateCard": await answer_of(
            client.put_rate_card(
                rate_card_id="probe-card",
                currency_code="USD",
                prices=PRICES,
                effective_from=PROBE_EFFECTIVE,
            )
        ),
        "PutCustomer": await answer_of(
            client.put_customer(customer_id="probe-customer", rate_card_id=CARD)
        ),
        "CreateBucket": await answer_of(
            client.create_bucket(
                customer_id=CUSTOMER,
                bucket_id="probe-bucket",
                outcome_type="escalation",
                quantity=5,
            )
        ),
        "ConsumeBucket": await answer_of(
            client.consume_bucket(
                customer_id=CUSTOMER, request_id="probe-consume", quantity=1, bucket_id=RESERVE
            )
        ),
        "ReverseOutcome": await answer_of(
            client.reverse_outcome(
                customer_id=CUSTOMER, outcome_id=reversed_outcome, reason="probe"
            )
        ),
        "ConfirmOutcome": await answer_of(
            client.confirm_outcome(customer_id=CUSTOMER, outcome_id=PENDING)
        ),
    }


async def _reads(client: RatingClient) -> dict[str, str]:
    return {
        "GetBalance": await answer_of(client.get_balance(customer_id=CUSTOMER)),
        "QuoteCost": await answer_of(
            client.quote_cost(customer_id=CUSTOMER, outcome_type="resolution", quantity=3)
        ),
        "ListLedgerEntries": await answer_of(
            client.list_ledger_entries(customer_id=CUSTOMER, page_size=10)
        ),
    }


async def _ride_out(server: ServiceProcess, fault: Fault) -> Ride:
    async with (
        RatingClient(server.address, max_attempts=1, timeout=CALL_TIMEOUT) as client,
        RatingClient(server.address, timeout=60, max_attempts=100, max_backoff=0.5) as patient,
    ):
        await _set_up(client)
        ride = Ride(Load(client, CUSTOMER, "resolution"))
        load = ride.load
        running = asyncio.create_task(load.run())
        applied = False
        try:
            await load.until(lambda: load.count("before", OK) >= BEFORE, "acknowledged before")
            ride.reversed_outcome = next(iter(load.acknowledged))
            fault.apply()
            applied = True
            load.phase = "during"
            await load.until(
                lambda: (
                    load.count("during", STORE_UNAVAILABLE) >= DURING
                    or load.total("during") >= ENOUGH
                ),
                "answers during the fault",
            )
            async with load.paused():  # each call alone in its batch
                ride.writes_during = await _writes(client, ride.reversed_outcome)
                ride.reads_during = await _reads(client)
            fault.remove()
            applied = False
            load.phase = "after"
            await load.until(
                lambda: load.count("after", OK) >= AFTER or load.total("after") >= ENOUGH,
                "answers after the fault",
            )
        finally:
            load.stop()
            await running
            if applied:
                fault.remove()
        if load.count("after", OK) < AFTER:
            return ride  # it did not recover: nothing more to learn from this process
        ride.writes_after = await _writes(patient, ride.reversed_outcome)
        ride.entries_before_retry = await ledger(client, CUSTOMER)
        ride.retried = await load.record_again(patient)
        ride.entries_final = await ledger(client, CUSTOMER)
    ride.starts = server.starts
    ride.exit_code = await asyncio.to_thread(server.terminate)
    verified = await asyncio.to_thread(server.run, "verify")
    ride.verify_code, ride.verify_output = verified.returncode, verified.stdout
    return ride


@contextlib.contextmanager
def _faulty_server(kind: str, root: Path) -> Iterator[tuple[ServiceProcess, Fault]]:
    """A running server on the storage ``kind`` names, and the fault to apply to it."""
    launcher = Launcher(root)
    with contextlib.ExitStack() as stack:
        if kind.startswith("postgresql") and not POSTGRES_URL:
            pytest.skip("RATING_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        fault: Fault
        if kind == "sqlite-read-only":
            disk = stack.enter_context(mounted(root / "disk", kind="ext4", size_mib=32))
            (disk / "ledger").mkdir()
            database = disk / "ledger" / "rating.db"
            server = launcher(database_path=database)
            files = [database, database.with_name("rating.db-wal"), database.parent]
            fault = ImmutableFiles(files)
        elif kind == "sqlite-disk-full":
            disk = stack.enter_context(mounted(root / "disk", kind="tmpfs", size_mib=32))
            server = launcher(database_path=disk / "rating.db")
            fault = FullDisk(disk)
        elif kind == "postgresql-read-only":
            url = stack.enter_context(fresh_postgres_database(POSTGRES_URL))
            server = launcher(env={"RATING_DATABASE_URL": url})
            admin = psycopg_free_url(POSTGRES_URL)
            fault = ReadOnlyPostgres(admin, url.rsplit("/", 1)[1])
        else:
            url, disk = stack.enter_context(postgres_on_small_disk(POSTGRES_URL, size_mib=24))
            server = launcher(env={"RATING_DATABASE_URL": url})
            fault = FullDisk(disk)
        # Stopped before the disk is unmounted or the database dropped.
        stack.callback(launcher.stop_all)
        yield server, fault


@pytest.fixture(scope="module", params=READ_ONLY + DISK_FULL)
def ride(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ride]:
    kind = str(request.param)
    with _faulty_server(kind, tmp_path_factory.mktemp(kind)) as (server, fault):
        yield asyncio.run(_ride_out(server, fault))


@pytest.fixture
def read_only(request: pytest.FixtureRequest) -> bool:
    """Whether this ride's fault refuses every write (a full disk may still take some)."""
    return request.node.callspec.params["ride"] in READ_ONLY


def test_the_fault_made_writes_answer_unavailable(ride: Ride) -> None:
    """The fault did reach the service (and it said so) while the load ran."""
    assert ride.load.count("during", STORE_UNAVAILABLE) >= DURING, ride.load.answers


def test_every_answer_was_a_success_or_unavailable(ride: Ride) -> None:
    """Never INTERNAL or UNKNOWN for the fault: UNAVAILABLE/STORE_UNAVAILABLE, a retry is safe."""
    answers = ride.load.labels() | set(ride.writes_during.values())

    assert answers <= {OK, STORE_UNAVAILABLE}


def test_every_write_rpc_answered_unavailable_during_the_fault(ride: Ride, read_only: bool) -> None:
    """Not one write succeeds while the store cannot write; on a full disk, one that still
    found room may succeed (it is checked in the ledger below)."""
    allowed = {STORE_UNAVAILABLE} if read_only else {OK, STORE_UNAVAILABLE}

    assert set(ride.writes_during.values()) <= allowed, ride.writes_during
    assert len(ride.writes_during) == 6


def test_reads_kept_answering_during_the_fault(ride: Ride) -> None:
    """A store that cannot write still answers GetBalance, QuoteCost and ListLedgerEntries."""
    assert ride.reads_during == dict.fromkeys(ride.reads_during, OK)
    assert len(ride.reads_during) == 3


def test_the_same_process_recovered_once_the_fault_was_gone(ride: Ride) -> None:
    """No restart: the server that answered UNAVAILABLE acknowledges writes again."""
    assert ride.load.count("after", OK) >= AFTER, ride.load.answers
    assert ride.starts == 1
    assert ride.writes_after == dict.fromkeys(ride.writes_after, OK)


def test_every_acknowledged_outcome_is_in_the_ledger_exactly_once(ride: Ride) -> None:
    """An answer meant a durable commit: nothing acknowledged was lost or doubled."""
    counts = kinds_and_keys(ride.entries_before_retry)

    assert len(ride.load.acknowledged) >= BEFORE + AFTER
    assert {o: counts[("OUTCOME_RATED", o)] for o in ride.load.acknowledged} == dict.fromkeys(
        ride.load.acknowledged, 1
    )


def test_sending_an_acknowledged_outcome_again_replays_its_sequence(ride: Ride) -> None:
    replays = {
        o: (ride.retried[o].replayed, ride.retried[o].ledger_sequence)
        for o in ride.load.acknowledged
    }

    assert replays == {o: (True, a.ledger_sequence) for o, a in ride.load.acknowledged.items()}


def test_sending_every_outcome_again_records_each_exactly_once(ride: Ride) -> None:
    """Refused outcomes are recorded by the retry; none twice."""
    counts = kinds_and_keys(ride.entries_final)

    assert {o: counts[("OUTCOME_RATED", o)] for o in ride.load.sent} == dict.fromkeys(
        ride.load.sent, 1
    )


def test_every_other_write_took_effect_exactly_once(ride: Ride) -> None:
    """Bucket created, units consumed, outcome reversed, pending outcome confirmed: once each."""
    counts = kinds_and_keys(ride.entries_final)

    assert [
        counts[("BUCKET_CREATED", "probe-bucket")],
        counts[("BUCKET_CONSUMED", "probe-consume")],
        counts[("OUTCOME_REVERSED", ride.reversed_outcome)],
        counts[("OUTCOME_RATED", PENDING)],
    ] == [1, 1, 1, 1]


def test_no_failure_message_carries_sql(ride: Ride) -> None:
    """The database's words only: no statement, no parameters (other callers' customers)."""
    leaks = [m for m in ride.load.messages if "[SQL" in m or "[parameters" in m or len(m) > 300]

    assert leaks == []


def test_the_server_stops_cleanly_and_verify_passes(ride: Ride) -> None:
    """SIGTERM exits 0; `rating-service verify` replays chain, sums and balances and exits 0."""
    assert ride.exit_code == 0
    assert ride.verify_code == 0, ride.verify_output
