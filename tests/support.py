"""Small helpers the tests share: money literals, set-up calls, error inspection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from google.type import money_pb2
from grpc_status import rpc_status
from rating_client import decimal_to_money, money_to_decimal
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc


@contextlib.contextmanager
def fresh_postgres_database(server_url: str, options: str = "") -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url``, dropped afterwards;
    ``options`` are CREATE DATABASE's (e.g. ``TABLESPACE small``)."""
    name = f"rating_test_{uuid.uuid4().hex[:16]}"
    admin = psycopg_free_url(server_url)
    psql(admin, f"CREATE DATABASE {name} {options}")
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def psycopg_free_url(url: str) -> str:
    """The URL as psql takes it (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def psql(url: str, statement: str) -> None:
    subprocess.run(["psql", url, "-qc", statement], check=True, capture_output=True, timeout=30)


async def execute_directly(database_url: str, *statements: str) -> None:
    """Runs ``statements`` on the database behind the service's back, each in autocommit.

    As an operator with a SQL prompt would: ``sqlite3`` on the SQLite file (in a
    thread, so the service's writer keeps running and can let go of its lock),
    a direct ``asyncpg`` connection on PostgreSQL. The driver's error propagates.
    """
    if database_url.startswith("sqlite"):
        await asyncio.to_thread(_sqlite_execute, database_url.split(":///", 1)[1], statements)
        return
    conn = await asyncpg.connect(psycopg_free_url(database_url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _sqlite_execute(path: str, statements: tuple[str, ...]) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as db:
        for statement in statements:
            db.execute(statement)


def usd(amount: str) -> money_pb2.Money:
    return decimal_to_money(Decimal(amount), "USD")


def amount(money: money_pb2.Money) -> Decimal:
    return money_to_decimal(money)


def ts(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def window(delta: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(delta)
    return duration


async def put_rate_card(
    stub: rating_pb2_grpc.RatingServiceStub,
    *,
    rate_card_id: str = "standard",
    price: str = "0.99",
    outcome_type: str = "resolution",
    effective_from: datetime | None = None,
    settlement_window: timedelta | None = None,
) -> pb.PutRateCardResponse:
    request = pb.PutRateCardRequest(
        rate_card_id=rate_card_id,
        currency_code="USD",
        prices=[pb.Price(outcome_type=outcome_type, unit_price=usd(price))],
    )
    if effective_from is not None:
        request.effective_from.CopyFrom(ts(effective_from))
    if settlement_window is not None:
        request.prices[0].settlement_window.CopyFrom(window(settlement_window))
    response: pb.PutRateCardResponse = await stub.PutRateCard(request)
    return response


async def customer_on_rate_card(
    stub: rating_pb2_grpc.RatingServiceStub,
    customer_id: str = "acme",
    *,
    price: str = "0.99",
    settlement_window: timedelta | None = None,
) -> str:
    """A customer on its own rate card with one price for `resolution`."""
    card = f"card-{customer_id}"
    await put_rate_card(stub, rate_card_id=card, price=price, settlement_window=settlement_window)
    await stub.PutCustomer(pb.PutCustomerRequest(customer_id=customer_id, rate_card_id=card))
    return customer_id


async def create_bucket(
    stub: rating_pb2_grpc.RatingServiceStub,
    customer_id: str,
    bucket_id: str,
    quantity: int,
    *,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    priority: int = 0,
) -> pb.Bucket:
    request = pb.CreateBucketRequest(
        customer_id=customer_id,
        bucket_id=bucket_id,
        outcome_type="resolution",
        quantity=quantity,
        priority=priority,
    )
    if valid_from is not None:
        request.valid_from.CopyFrom(ts(valid_from))
    if valid_until is not None:
        request.valid_until.CopyFrom(ts(valid_until))
    bucket: pb.Bucket = await stub.CreateBucket(request)
    return bucket


def record(
    customer_id: str,
    outcome_id: str,
    *,
    state: int = pb.OUTCOME_STATE_CONFIRMED,
    occurred_at: datetime | None = None,
) -> pb.RecordOutcomeRequest:
    request = pb.RecordOutcomeRequest(
        customer_id=customer_id, outcome_id=outcome_id, outcome_type="resolution", state=state
    )
    if occurred_at is not None:
        request.occurred_at.CopyFrom(ts(occurred_at))
    return request


def reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo.reason the server attached to a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError("the error carries no ErrorInfo")


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields named by the BadRequest detail of an INVALID_ARGUMENT error."""
    status = rpc_status.from_call(error)
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


ECHO_BYTES = 256
"""The most bytes of what the caller sent that any one string of an error may carry (api.md)."""


def status_of(error: grpc.aio.AioRpcError | grpc.Call) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a failed call (asyncio or blocking)."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    return status


def unpacked(
    status: status_pb2.Status,
) -> tuple[error_details_pb2.ErrorInfo, list[tuple[str, str]]]:
    """The status's ErrorInfo and its BadRequest's (field, description) pairs."""
    info, violations = error_details_pb2.ErrorInfo(), []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations += [(v.field, v.description) for v in bad.field_violations]
        else:
            assert detail.Unpack(info)
    return info, violations


def strings_of(status: status_pb2.Status) -> Iterator[str]:
    """Every string of a status that may carry what the caller sent."""
    info, violations = unpacked(status)
    yield status.message
    yield from info.metadata.values()
    for field, description in violations:
        yield field
        yield description


async def all_entries(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str
) -> list[pb.LedgerEntry]:
    entries: list[pb.LedgerEntry] = []
    token = ""
    while True:
        page = await stub.ListLedgerEntries(
            pb.ListLedgerEntriesRequest(customer_id=customer_id, page_size=1000, page_token=token)
        )
        entries += page.entries
        token = page.next_page_token
        if not token:
            return entries


NODE_TIMEOUT = 60.0
"""Seconds one run of a Node example gets."""


async def run_node(node: Path, script: Path, *args: str) -> list[dict[str, Any]]:
    """Run a compiled example and return the JSON lines it printed; fail on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(script),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"{script.name} exited {process.returncode}:\n{out!r}\n{err!r}"
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]
