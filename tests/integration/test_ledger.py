"""The ledger: paged in sequence order, double entry, balances that replay, append-only on disk."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import defaultdict
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import (
    all_entries,
    amount,
    create_bucket,
    customer_on_rate_card,
    execute_directly,
    reason,
    record,
    violated_fields,
)

from rating_service.domain.postings import Posting
from rating_service.ledger.hashing import GENESIS, entry_hash

if TYPE_CHECKING:
    from conftest import MovableClock

PENDING = pb.OUTCOME_STATE_PENDING
NANOS = Decimal(10) ** 9
SWEEP_DEADLINE = 10.0  # seconds; the sweep runs every 0.05 s


async def entry_once_written(
    stub: rating_pb2_grpc.RatingServiceStub, customer_id: str, kind: int
) -> pb.LedgerEntry:
    """Polls the ledger (bounded) until an entry of ``kind`` appears, and returns the first."""
    deadline = asyncio.get_running_loop().time() + SWEEP_DEADLINE
    while True:
        found = [e for e in await all_entries(stub, customer_id) if e.kind == kind]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"no entry of kind {kind} appeared"
        await asyncio.sleep(0.05)


async def mixed_workload(stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock) -> str:
    """A customer whose ledger has every kind of transaction; returns the customer id."""
    customer = await customer_on_rate_card(stub, price="0.99")
    now = datetime.now(UTC)
    await create_bucket(stub, customer, "short", 3, valid_until=now + timedelta(hours=1))
    await create_bucket(stub, customer, "annual", 4)
    for i in range(4):  # 3 from "short", 1 from "annual"
        await stub.RecordOutcome(record(customer, f"settled-{i}"))
    await stub.ConsumeBucket(
        pb.ConsumeBucketRequest(
            customer_id=customer, request_id="draw-1", bucket_id="annual", quantity=1
        )
    )
    for i in range(3):  # 2 hold the last units of "annual", 1 holds its charge
        await stub.RecordOutcome(record(customer, f"pending-{i}", state=PENDING))
    await stub.RecordOutcome(record(customer, "billed-1"))
    await stub.ConfirmOutcome(
        pb.ConfirmOutcomeRequest(customer_id=customer, outcome_id="pending-0")
    )
    await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="pending-1")
    )
    await stub.ReverseOutcome(
        pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="settled-3")
    )
    await stub.ReverseOutcome(pb.ReverseOutcomeRequest(customer_id=customer, outcome_id="billed-1"))
    await create_bucket(stub, customer, "expiring", 5, valid_until=now + timedelta(hours=1))
    clock.advance(timedelta(hours=2))
    await entry_once_written(stub, customer, pb.LEDGER_ENTRY_KIND_BUCKET_EXPIRED)
    return customer


def posting_value(posting: pb.Posting) -> Decimal:
    return Decimal(posting.amount)


def sums_by_account(entries: list[pb.LedgerEntry]) -> dict[tuple[str, str], Decimal]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        for p in entry.postings:
            sums[(p.account, p.asset)] += posting_value(p)
    return sums


def stored_balances(database_path: Path, customer_id: str) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(f"file:{database_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT account, asset, amount FROM balances WHERE customer_id = ?", (customer_id,)
        ).fetchall()
    return {(account, asset): value for account, asset, value in rows}


def as_stored(asset: str, value: Decimal) -> int:
    """A posting sum in the balances table's integers: units as is, money in nanos."""
    return int(value if asset.startswith("unit:") else value * NANOS)


# ---- paging ---------------------------------------------------------------------------


async def test_five_entries_come_in_pages_of_two_two_and_one_in_sequence_order(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Each page continues where the last ended; only the last page has an empty token."""
    customer = await customer_on_rate_card(stub)
    for i in range(5):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))

    pages: list[pb.ListLedgerEntriesResponse] = []
    token = ""
    for _ in range(4):  # bounded: three pages are expected
        page = await stub.ListLedgerEntries(
            pb.ListLedgerEntriesRequest(customer_id=customer, page_size=2, page_token=token)
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            break

    assert [[e.sequence for e in p.entries] for p in pages] == [[1, 2], [3, 4], [5]]
    assert [bool(p.next_page_token) for p in pages] == [True, True, False]


async def test_a_ledger_that_fills_its_last_page_exactly_has_no_empty_page_after_it(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """Four entries in pages of two: the second page already says it is the last."""
    customer = await customer_on_rate_card(stub)
    for i in range(4):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))
    first = await stub.ListLedgerEntries(
        pb.ListLedgerEntriesRequest(customer_id=customer, page_size=2)
    )

    second = await stub.ListLedgerEntries(
        pb.ListLedgerEntriesRequest(
            customer_id=customer, page_size=2, page_token=first.next_page_token
        )
    )

    assert [e.sequence for e in second.entries] == [3, 4]
    assert second.next_page_token == ""


async def test_a_page_token_the_service_never_issued_is_refused(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """INVALID_ARGUMENT with reason INVALID_FIELD naming page_token."""
    customer = await customer_on_rate_card(stub)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListLedgerEntries(
            pb.ListLedgerEntriesRequest(customer_id=customer, page_token="not-a-token")
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(raised.value) == "INVALID_FIELD"
    assert violated_fields(raised.value) == ["page_token"]


async def test_the_ledger_of_an_unknown_customer_is_not_found(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """NOT_FOUND with reason CUSTOMER_NOT_FOUND, as for every RPC that names a customer."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(customer_id="nobody"))

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(raised.value) == "CUSTOMER_NOT_FOUND"


# ---- what an entry carries ---------------------------------------------------------------


async def test_a_bucket_creation_is_an_entry_issuing_its_units_as_available(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """BUCKET_CREATED with its units, postings issued -10 / available +10, and a hash."""
    customer = await customer_on_rate_card(stub)

    await create_bucket(stub, customer, "annual", 10)

    [entry] = await all_entries(stub, customer)
    assert (entry.kind, entry.bucket_id, entry.units) == (
        pb.LEDGER_ENTRY_KIND_BUCKET_CREATED,
        "annual",
        10,
    )
    assert [(p.account, p.asset, p.amount) for p in entry.postings] == [
        ("bucket:annual:issued", "unit:resolution", "-10"),
        ("bucket:annual:available", "unit:resolution", "10"),
    ]
    assert re.fullmatch("[0-9a-f]{64}", entry.hash), entry.hash  # SHA-256, lowercase hex


async def test_a_billed_outcome_is_an_entry_counting_it_and_its_charge_in_the_month(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """OUTCOME_RATED: one unit and USD 0.99 move from world to the month's usage accounts."""
    customer = await customer_on_rate_card(stub, price="0.99")

    answer = await stub.RecordOutcome(record(customer, "conv-1"))

    [entry] = await all_entries(stub, customer)
    period = datetime.now(UTC).strftime("%Y-%m")
    assert (entry.sequence, entry.kind, entry.outcome_id) == (
        answer.ledger_sequence,
        pb.LEDGER_ENTRY_KIND_OUTCOME_RATED,
        "conv-1",
    )
    assert amount(entry.amount) == Decimal("0.99")
    assert [(p.account, p.asset, p.amount) for p in entry.postings] == [
        ("world", "unit:resolution", "-1"),
        (f"usage:{period}:outcomes", "unit:resolution", "1"),
        ("world", "USD", "-0.99"),
        (f"usage:{period}:charged", "USD", "0.99"),
    ]


async def test_each_entry_hash_chains_it_to_the_previous_one_over_its_published_content(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """Recomputing SHA-256 over each listed entry and the previous hash gives its hash."""
    customer = await mixed_workload(stub, clock)

    entries = await all_entries(stub, customer)

    previous = GENESIS
    recomputed: list[str] = []
    for e in entries:
        previous = entry_hash(
            prev_hash=previous,
            customer_id=e.customer_id,
            sequence=e.sequence,
            transaction_id=e.transaction_id,
            kind=pb.LedgerEntryKind.Name(e.kind).removeprefix("LEDGER_ENTRY_KIND_"),
            outcome_type=e.outcome_type,
            outcome_id=e.outcome_id,
            request_id=e.request_id,
            bucket_id=e.bucket_id,
            units=e.units,
            amount_nanos=e.amount.units * 10**9 + e.amount.nanos,
            currency=e.amount.currency_code,
            occurred_at=e.occurred_at.ToMicroseconds(),
            recorded_at=e.recorded_at.ToMicroseconds(),
            postings=[
                Posting(p.account, p.asset, as_stored(p.asset, posting_value(p)))
                for p in e.postings
            ],
        )
        recomputed.append(previous)
    assert recomputed == [e.hash for e in entries]


# ---- double entry ---------------------------------------------------------------------------


async def test_every_transaction_sums_to_zero_per_asset_after_a_mixed_workload(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """Buckets, settled, pending, confirmed, reversed, consumed and expired: all balance."""
    customer = await mixed_workload(stub, clock)

    entries = await all_entries(stub, customer)

    unbalanced = {}
    for entry in entries:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for p in entry.postings:
            totals[p.asset] += posting_value(p)
        if any(totals.values()):
            unbalanced[entry.sequence] = dict(totals)
    kinds = {pb.LedgerEntryKind.Name(e.kind) for e in entries}
    assert len(kinds) == 7, f"the workload must exercise every kind, got {sorted(kinds)}"
    assert unbalanced == {}


async def test_what_get_balance_reports_is_the_sum_of_the_postings(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """Bucket remaining and held, the month's usage and charges, and pending, from the postings."""
    customer = await mixed_workload(stub, clock)

    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))

    sums = sums_by_account(await all_entries(stub, customer))
    period = balance.period_start.ToDatetime(UTC).strftime("%Y-%m")
    unit = "unit:resolution"
    reported: dict[tuple[str, str], Decimal] = {
        (f"usage:{period}:outcomes", unit): Decimal(balance.period_outcomes),
        (f"usage:{period}:charged", "USD"): amount(balance.period_charged),
        ("outcomes:pending", unit): Decimal(balance.pending_outcomes),
        ("charges:pending", "USD"): amount(balance.pending_charge),
    }
    for b in balance.buckets:
        reported[(f"bucket:{b.bucket_id}:available", unit)] = Decimal(b.remaining)
        reported[(f"bucket:{b.bucket_id}:held", unit)] = Decimal(b.held)
    replayed = {key: sums[key] for key in reported}
    assert replayed == reported


async def test_every_stored_balance_is_the_sum_of_its_postings(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock, database_path: Path
) -> None:
    """The balances table holds exactly the per-account sums of the listed postings.

    All but the outside world's: a contra account nothing reads, whose balance
    would only grow, year after year, past any fixed range.
    """
    customer = await mixed_workload(stub, clock)

    stored = await asyncio.to_thread(stored_balances, database_path, customer)

    replayed = {
        key: as_stored(key[1], value)
        for key, value in sums_by_account(await all_entries(stub, customer)).items()
        if key[0] != "world"
    }
    assert stored == replayed


# ---- append-only -------------------------------------------------------------------------------


REWRITES = [
    pytest.param(f"{verb} {table}{rest}", id=f"{verb.split()[0].lower()}-{table}")
    for table, column in (("ledger_entries", "units"), ("ledger_postings", "amount"))
    for verb, rest in (
        ("UPDATE", f" SET {column} = {column} + 1"),
        ("DELETE FROM", ""),
        ("TRUNCATE", ""),
    )
]


@pytest.mark.parametrize("statement", REWRITES)
async def test_the_database_refuses_to_rewrite_the_ledger(
    stub: rating_pb2_grpc.RatingServiceStub, engine: str, database_url: str, statement: str
) -> None:
    """UPDATE, DELETE and TRUNCATE fail in the database itself with an append-only error.

    Sent on a connection of its own (sqlite3 on the file, asyncpg on
    PostgreSQL), as an operator would; the ledger is unchanged afterwards.
    """
    if engine == "sqlite" and statement.startswith("TRUNCATE"):
        pytest.skip("SQLite has no TRUNCATE (its DELETE without WHERE is refused above)")
    customer = await customer_on_rate_card(stub)
    await create_bucket(stub, customer, "annual", 10)
    await stub.RecordOutcome(record(customer, "conv-1"))
    before = await all_entries(stub, customer)

    with pytest.raises((sqlite3.IntegrityError, asyncpg.RaiseError), match="append-only"):
        await execute_directly(database_url, statement)

    assert await all_entries(stub, customer) == before


# ---- bucket expiry -----------------------------------------------------------------------------


async def test_an_expired_bucket_moves_its_undrawn_units_to_expired(
    stub: rating_pb2_grpc.RatingServiceStub, clock: MovableClock
) -> None:
    """Past valid_until a BUCKET_EXPIRED entry moves the 3 undrawn units; the bucket shows EXPIRED."""
    customer = await customer_on_rate_card(stub)
    now = datetime.now(UTC)
    await create_bucket(stub, customer, "short", 5, valid_until=now + timedelta(hours=1))
    for i in range(2):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))

    clock.advance(timedelta(hours=2))
    expired = await entry_once_written(stub, customer, pb.LEDGER_ENTRY_KIND_BUCKET_EXPIRED)

    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    assert (expired.bucket_id, expired.units) == ("short", 3)
    assert [(p.account, p.asset, p.amount) for p in expired.postings] == [
        ("bucket:short:available", "unit:resolution", "-3"),
        ("bucket:short:expired", "unit:resolution", "3"),
    ]
    assert [(b.bucket_id, b.status, b.remaining) for b in balance.buckets] == [
        ("short", pb.BUCKET_STATUS_EXPIRED, 0)
    ]
