"""The server as an operator runs it: health, reflection, signals, one owner per port, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from rating_client.v1 import rating_pb2_grpc
from service_process import Launcher, ServiceProcess, health_status
from support import all_entries, customer_on_rate_card, record

SERVICE = "rating.v1.RatingService"
BURST = 600
"""Calls sent at once before SIGTERM: enough that many are still in flight at the signal."""
LATE = 20
"""Calls sent once the server has begun to drain: whether or not the burst has all
reached a handler by then, these have not, and must be refused."""


@pytest.mark.parametrize("service", ["", SERVICE])
def test_the_health_service_reports_serving(server: ServiceProcess, service: str) -> None:
    """grpc.health.v1 answers SERVING for the whole server and for RatingService."""
    assert health_status(server.address, service) == health_pb2.HealthCheckResponse.SERVING


def test_server_reflection_lists_the_rating_service(server: ServiceProcess) -> None:
    """A tool like grpcurl discovers rating.v1.RatingService without any .proto file."""
    with grpc.insecure_channel(server.address) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()

    assert SERVICE in services


def test_a_client_with_only_reflection_can_call_the_service(server: ServiceProcess) -> None:
    """Descriptors resolved by reflection (money.proto included) build a working PutRateCard."""
    with grpc.insecure_channel(server.address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method = pool.FindServiceByName(SERVICE).FindMethodByName("PutRateCard")
        request_type = message_factory.GetMessageClass(method.input_type)
        reply_type = message_factory.GetMessageClass(method.output_type)
        request = json_format.ParseDict(
            {
                "rateCardId": "reflected",
                "currencyCode": "USD",
                "prices": [
                    {
                        "outcomeType": "resolution",
                        "unitPrice": {"currencyCode": "USD", "units": "1", "nanos": 250000000},
                    }
                ],
            },
            request_type(),
        )
        call = channel.unary_unary(
            f"/{SERVICE}/PutRateCard",
            request_serializer=request_type.SerializeToString,
            response_deserializer=reply_type.FromString,
        )
        reply = call(request, timeout=10)

    assert json_format.MessageToDict(reply)["version"]["prices"][0]["unitPrice"] == {
        "currencyCode": "USD",
        "units": "1",
        "nanos": 250000000,
    }


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_server_exits_0_on_sigterm_or_sigint(
    server: ServiceProcess, signum: signal.Signals
) -> None:
    """Either signal stops the server cleanly."""
    assert server.process is not None
    server.process.send_signal(signum)

    assert server.wait() == 0, server.output()


@dataclass
class Drain:
    """What a burst of calls saw when SIGTERM arrived in its middle."""

    exit_code: int
    output: str = field(repr=False)
    in_flight: set[str] = field(repr=False)
    """Outcomes whose calls had been sent but not answered when the signal was sent."""
    answered: set[str] = field(repr=False)
    failed: dict[str, str] = field(repr=False)
    """Outcome id to the status code (or exception) its call failed with."""
    in_ledger: set[str] = field(repr=False)
    """Outcomes in the ledger once the server is restarted on the same file."""


async def until_draining(address: str) -> None:
    """Returns once the server no longer reports SERVING (or no longer answers at all)."""
    deadline = asyncio.get_running_loop().time() + 30
    while await asyncio.to_thread(health_status, address) == health_pb2.HealthCheckResponse.SERVING:
        assert asyncio.get_running_loop().time() < deadline, "the server never began to drain"
        await asyncio.sleep(0.01)


async def _sigterm_mid_burst(server: ServiceProcess) -> Drain:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub, "sigterm-co")
        calls = {
            f"conv-{i}": asyncio.ensure_future(
                stub.RecordOutcome(record(customer, f"conv-{i}"), timeout=30)
            )
            for i in range(BURST)
        }
        await asyncio.wait(calls.values(), timeout=30, return_when=asyncio.FIRST_COMPLETED)
        in_flight = {o for o, call in calls.items() if not call.done()}
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        await until_draining(server.address)
        calls |= {  # calls the server has surely not started: it has begun to drain
            f"late-{i}": asyncio.ensure_future(
                stub.RecordOutcome(record(customer, f"late-{i}"), timeout=30)
            )
            for i in range(LATE)
        }
        await asyncio.wait(calls.values(), timeout=60)
    exit_code = await asyncio.to_thread(server.wait)
    output = server.output()

    await asyncio.to_thread(server.start)
    async with grpc.aio.insecure_channel(server.address) as channel:
        entries = await all_entries(rating_pb2_grpc.RatingServiceStub(channel), customer)
    failed = {
        o: e.code().name if isinstance(e, grpc.aio.AioRpcError) else repr(e)
        for o, call in calls.items()
        if (e := call.exception()) is not None
    }
    return Drain(
        exit_code=exit_code,
        output=output,
        in_flight=in_flight,
        answered=set(calls) - set(failed),
        failed=failed,
        in_ledger={e.outcome_id for e in entries},
    )


@pytest.fixture(scope="module")
def drain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drain]:
    """A burst of RecordOutcome calls, SIGTERM once the first is answered, a few calls more
    once the server drains, then a restart."""
    launcher = Launcher(tmp_path_factory.mktemp("drain"))
    try:
        yield asyncio.run(_sigterm_mid_burst(launcher()))
    finally:
        launcher.stop_all()


def test_sigterm_with_calls_in_flight_exits_0(drain: Drain) -> None:
    """The server drains and exits 0 although calls were still running at the signal."""
    assert drain.answered & drain.in_flight, "no call was still in flight at the signal"
    assert drain.exit_code == 0, drain.output


def test_sigterm_never_cuts_off_a_committed_call(drain: Drain) -> None:
    """The ledger holds exactly the answered outcomes: none was committed and left unanswered."""
    assert drain.in_ledger == drain.answered


def test_calls_the_draining_server_did_not_finish_fail_with_unavailable(drain: Drain) -> None:
    """A call the draining server does not serve gets UNAVAILABLE, which clients retry.

    Some of the burst may reach it after the signal; the calls sent once it
    drains surely do, so there is always such a call.

    CANCELLED ("cancelled by the caller") is not retried by RatingClient, so a
    graceful restart would surface as errors to callers.
    """
    assert drain.failed, "every call was served: none met the draining server"
    assert set(drain.failed.values()) == {"UNAVAILABLE"}, Counter(drain.failed.values())


def test_a_second_server_on_the_same_address_exits_non_zero_naming_the_address(
    launch: Launcher,
) -> None:
    """Ports are not shared silently: the second process refuses to start."""
    first = launch()
    second = launch(database_path=first.database_path, address=first.address, start=False)

    second.spawn()

    assert second.wait() != 0
    assert [
        line
        for line in second.output().splitlines()
        if line.startswith("rating-service:") and first.address in line
    ], second.output()


def test_the_first_server_keeps_serving_after_a_second_one_failed_to_bind(
    launch: Launcher,
) -> None:
    """The refused second process leaves the first one untouched."""
    first = launch()
    second = launch(database_path=first.database_path, address=first.address, start=False)
    second.spawn()
    second.wait()

    assert health_status(first.address) == health_pb2.HealthCheckResponse.SERVING


def test_migrate_creates_the_schema_on_a_fresh_file(launch: Launcher, tmp_path: Path) -> None:
    """`rating-service migrate` exits 0 and leaves the ledger tables and their guards."""
    fresh = launch(database_path=tmp_path / "fresh.db", start=False)

    result = fresh.run("migrate")

    assert result.returncode == 0, result.stdout
    with contextlib.closing(sqlite3.connect(fresh.database_path)) as db:
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert {
        "customers",
        "rate_card_versions",
        "buckets",
        "ledger_entries",
        "ledger_postings",
        "balances",
        "outcomes",
        "consumptions",
        "ledger_entries_no_update",
        "ledger_entries_no_delete",
        "ledger_postings_no_update",
        "ledger_postings_no_delete",
    } <= names


def schema_and_rows(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table, index and trigger with its SQL, the schema's revision, the customers."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return {
            query: db.execute(query).fetchall()
            for query in (
                "SELECT type, name, sql FROM sqlite_master ORDER BY type, name",
                "SELECT version_num FROM alembic_version",
                "SELECT * FROM customers",
            )
        }


def test_migrate_twice_is_a_no_op(launch: Launcher, tmp_path: Path) -> None:
    """Running migrate again on an up-to-date schema succeeds and changes nothing.

    The same tables, indexes and triggers, the same revision, and the rows
    already written are still there.
    """
    fresh = launch(database_path=tmp_path / "fresh.db", start=False)
    assert fresh.run("migrate").returncode == 0
    with contextlib.closing(sqlite3.connect(fresh.database_path)) as db, db:
        db.execute(
            "INSERT INTO customers (customer_id, created_at, updated_at) VALUES ('kept', 1, 1)"
        )
    before = schema_and_rows(fresh.database_path)

    again = fresh.run("migrate")

    assert again.returncode == 0, again.stdout
    assert schema_and_rows(fresh.database_path) == before
    assert [row[0] for row in before["SELECT * FROM customers"]] == ["kept"]
