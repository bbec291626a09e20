"""`verify` names the entry whatever stored field of it was edited behind the service's back.

Each entry's hash commits to every column of its ``ledger_entries`` row and to
its postings (account, asset, amount, in order). Every test here edits one of
them, as an intruder with the table owner's rights would (the append-only
triggers out of the way), and expects ``verify`` to report a hash mismatch at
that entry: the other checks (sums, balances, the chain's sequence) would
catch some edits too, but only the hash catches them all. A last test keeps
the list of edits in step with the schema, so a new column is never left
outside the hash unnoticed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from support import create_bucket, customer_on_rate_card, record

from rating_service.ledger.engine import create_engines
from rating_service.ledger.schema import APPEND_ONLY_TABLES, ledger_entries, ledger_postings
from rating_service.ledger.verify import Report, verify

CUSTOMER = "acme"
OTHER = "bystander"

DRAWN = "outcome_id = 'conv-1'"
"""The outcome covered by bucket ``annual``: outcome type, outcome id, bucket, one unit."""
CHARGED = "outcome_id = 'conv-2'"
"""The outcome billed USD 0.99: an amount, a currency, four postings."""
CONSUMED = "request_id = 'draw-1'"
"""The manual draw from bucket ``spare``: a request id."""

Edit = Callable[[AsyncConnection], Awaitable[tuple[str, int]]]
"""Edits the ledger; answers the customer and sequence of the entry ``verify`` must name."""


async def write_ledger(stub: rating_pb2_grpc.RatingServiceStub) -> None:
    """Two customers; acme's entries between them fill every column of ledger_entries."""
    for customer in (CUSTOMER, OTHER):
        await customer_on_rate_card(stub, customer, price="0.99")
    await create_bucket(stub, CUSTOMER, "annual", 1)
    await stub.RecordOutcome(record(CUSTOMER, "conv-1"))
    await stub.RecordOutcome(record(CUSTOMER, "conv-2"))
    await create_bucket(stub, CUSTOMER, "spare", 2)
    await stub.ConsumeBucket(
        pb.ConsumeBucketRequest(
            customer_id=CUSTOMER, request_id="draw-1", bucket_id="spare", quantity=1
        )
    )
    await stub.RecordOutcome(record(OTHER, "other-1"))


@contextlib.asynccontextmanager
async def tampering(database_url: str) -> AsyncIterator[AsyncConnection]:
    """One transaction on the database, with the append-only triggers out of the way."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            for table in APPEND_ONLY_TABLES:
                if conn.dialect.name == "sqlite":
                    for action in ("update", "delete"):
                        await conn.execute(text(f"DROP TRIGGER {table}_no_{action}"))
                else:
                    await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            yield conn
    finally:
        await engine.dispose()


async def verified(database_url: str) -> Report:
    engines = create_engines(database_url)
    try:
        return await verify(engines)
    finally:
        await engines.dispose()


async def run(conn: AsyncConnection, statement: str, **params: Any) -> Any:
    return await conn.execute(text(statement), {"customer": CUSTOMER, **params})


async def sequence_of(conn: AsyncConnection, where: str) -> int:
    found = await run(
        conn, f"SELECT sequence FROM ledger_entries WHERE customer_id = :customer AND {where}"
    )
    sequence: int = found.scalar_one()
    return sequence


# ---- edits of an entry's row, one per column ------------------------------------------


def flipped(value: str) -> str:
    """The same length, the last character changed (ids and hashes keep their width)."""
    return value[:-1] + ("1" if value[-1] == "0" else "0")


def column_edit(column: str, where: str, change: Callable[[Any], Any]) -> Edit:
    """``column`` of the entry ``where`` picks, set to ``change`` of its value."""

    async def edit(conn: AsyncConnection) -> tuple[str, int]:
        sequence = await sequence_of(conn, where)
        found = await run(
            conn,
            f"SELECT {column} FROM ledger_entries WHERE customer_id = :customer "
            "AND sequence = :sequence",
            sequence=sequence,
        )
        await run(
            conn,
            f"UPDATE ledger_entries SET {column} = :value "
            "WHERE customer_id = :customer AND sequence = :sequence",
            value=change(found.scalar_one()),
            sequence=sequence,
        )
        return CUSTOMER, sequence

    return edit


async def moved_to_another_customer(conn: AsyncConnection) -> tuple[str, int]:
    """The charged entry and its postings, word for word, in the bystander's ledger."""
    sequence = await sequence_of(conn, CHARGED)
    for table in APPEND_ONLY_TABLES:
        await run(
            conn,
            f"UPDATE {table} SET customer_id = :other "
            "WHERE customer_id = :customer AND sequence = :sequence",
            other=OTHER,
            sequence=sequence,
        )
    return OTHER, sequence


async def renumbered(conn: AsyncConnection) -> tuple[str, int]:
    """The last entry and its postings moved one place on (the head left as it was)."""
    head = await sequence_of(conn, "sequence = (SELECT max(sequence) FROM ledger_entries)")
    for table in APPEND_ONLY_TABLES:
        await run(
            conn,
            f"UPDATE {table} SET sequence = :new WHERE customer_id = :customer AND sequence = :old",
            new=head + 1,
            old=head,
        )
    return CUSTOMER, head + 1


ENTRY_EDITS: dict[str, Edit] = {
    "customer_id": moved_to_another_customer,
    "sequence": renumbered,
    "transaction_id": column_edit("transaction_id", CHARGED, flipped),
    "kind": column_edit("kind", CHARGED, lambda _: "OUTCOME_HELD"),
    "outcome_type": column_edit("outcome_type", CHARGED, lambda v: v + "x"),
    "outcome_id": column_edit("outcome_id", CHARGED, lambda v: v + "x"),
    "request_id": column_edit("request_id", CONSUMED, lambda v: v + "x"),
    "bucket_id": column_edit("bucket_id", DRAWN, lambda v: v + "x"),
    "units": column_edit("units", DRAWN, lambda v: v + 1),
    "amount_nanos": column_edit("amount_nanos", CHARGED, lambda v: v + 1),
    "currency": column_edit("currency", CHARGED, lambda _: "EUR"),
    "occurred_at": column_edit("occurred_at", CHARGED, lambda v: v + 1),
    "recorded_at": column_edit("recorded_at", CHARGED, lambda v: v + 1),
    "prev_hash": column_edit("prev_hash", CHARGED, flipped),
    "hash": column_edit("hash", CHARGED, flipped),
}
"""Every column of ledger_entries, each changed as little as its type allows."""


# ---- edits of an entry's postings --------------------------------------------------------


def posting_edit(*statements: str) -> Edit:
    """``statements`` run with the charged entry's customer and sequence (4 postings: 0-3)."""

    async def edit(conn: AsyncConnection) -> tuple[str, int]:
        sequence = await sequence_of(conn, CHARGED)
        drawn = await sequence_of(conn, DRAWN)
        for statement in statements:
            await run(conn, statement, sequence=sequence, other=OTHER, drawn=drawn)
        return CUSTOMER, sequence

    return edit


AT = "WHERE customer_id = :customer AND sequence = :sequence"

POSTING_EDITS: dict[str, Edit] = {
    "amount": posting_edit(f"UPDATE ledger_postings SET amount = amount + 1 {AT} AND position = 0"),
    "account": posting_edit(
        f"UPDATE ledger_postings SET account = account || 'x' {AT} AND position = 1"
    ),
    "asset": posting_edit(f"UPDATE ledger_postings SET asset = asset || 'x' {AT} AND position = 0"),
    "position": posting_edit(  # the first two postings swap places
        f"UPDATE ledger_postings SET position = 99 {AT} AND position = 0",
        f"UPDATE ledger_postings SET position = 0 {AT} AND position = 1",
        f"UPDATE ledger_postings SET position = 1 {AT} AND position = 99",
    ),
    "sequence": posting_edit(  # the last posting moves to another entry of the customer
        f"UPDATE ledger_postings SET sequence = :drawn, position = 99 {AT} AND position = 3"
    ),
    "customer_id": posting_edit(  # the last posting moves to the bystander's ledger
        f"UPDATE ledger_postings SET customer_id = :other, sequence = 1, position = 99 "
        f"{AT} AND position = 3"
    ),
}
"""Every column of ledger_postings, each changed on one posting of the charged entry."""

POSTING_SET_EDITS: dict[str, Edit] = {
    # Balanced, and on the outside world's account, whose balance is not kept:
    # only the hash tells the entry changed.
    "a balanced pair added": posting_edit(
        "INSERT INTO ledger_postings (customer_id, sequence, position, account, asset, amount) "
        "VALUES (:customer, :sequence, 98, 'world', 'USD', 1), "
        "(:customer, :sequence, 99, 'world', 'USD', -1)"
    ),
    "a balanced pair removed": posting_edit(
        f"DELETE FROM ledger_postings {AT} AND position IN (2, 3)"
    ),
}


async def edited_ledger(
    stub: rating_pb2_grpc.RatingServiceStub, database_url: str, edit: Edit
) -> str:
    """The ledger written, then ``edit``-ed: ``customer 'x' sequence n``, the entry to name."""
    await write_ledger(stub)
    async with tampering(database_url) as conn:
        customer, sequence = await edit(conn)
    return f"customer {customer!r} sequence {sequence}"


def hash_mismatches(report: Report) -> list[str]:
    """``customer 'x' sequence n`` of each entry whose recomputed hash differs from its own."""
    return [p.split(":")[0] for p in report.problems if ": hash mismatch" in p]


EDITS = [
    *(pytest.param(edit, id=f"ledger_entries.{name}") for name, edit in ENTRY_EDITS.items()),
    *(
        pytest.param(edit, id=f"ledger_postings.{name}")
        for name, edit in (POSTING_EDITS | POSTING_SET_EDITS).items()
    ),
    pytest.param(
        column_edit("kind", CHARGED, lambda _: "REFUNDED"),
        id="ledger_entries.kind-unknown",
    ),
    pytest.param(
        column_edit("occurred_at", CHARGED, lambda _: 2**62),
        id="ledger_entries.occurred_at-past-year-9999",
    ),
]


async def test_an_untouched_ledger_verifies(
    stub: rating_pb2_grpc.RatingServiceStub, database_url: str
) -> None:
    """The control: the same ledger, the same verify, no edit, no problem."""
    await write_ledger(stub)

    report = await verified(database_url)

    assert (report.ok, report.customers, report.entries) == (True, 2, 6), report.problems


@pytest.mark.parametrize("edit", EDITS)
async def test_verify_names_the_entry_whose_stored_field_was_edited(
    stub: rating_pb2_grpc.RatingServiceStub, database_url: str, edit: Edit
) -> None:
    """A hash mismatch at that customer and sequence, whichever field it was."""
    entry = await edited_ledger(stub, database_url, edit)

    report = await verified(database_url)

    assert entry in hash_mismatches(report), report.problems


def test_every_stored_column_of_the_ledger_has_an_edit_above() -> None:
    """A column added to either table must be hashed, and get its edit here to prove it."""
    assert set(ENTRY_EDITS) == {c.name for c in ledger_entries.columns}
    assert set(POSTING_EDITS) == {c.name for c in ledger_postings.columns}
