"""One customer, two languages, one server: the TypeScript and the Python clients agree.

A TypeScript program (clients/node/examples/record.ts, run by `node`) and the
Python client record outcomes for the same customer at the same time; one
outcome id is recorded by both. The ledger must hold each outcome exactly
once, the shared one answered once fresh and once as a replay of the same
answer, and both clients must then read the same balance.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path

from rating_client import OutcomeRecorded, RatingClient
from service_process import ServiceProcess
from support import run_node

CUSTOMER = "cross-co"
PRICE = Decimal("0.99")
BUCKET_UNITS = 3
TS_OUTCOMES = [f"ts-{n}" for n in range(1, 7)]
PY_OUTCOMES = [f"py-{n}" for n in range(1, 6)]
SHARED = "shared-1"


async def record_in_python(
    client: RatingClient, outcome_ids: list[str]
) -> dict[str, OutcomeRecorded]:
    recorded = {}
    for outcome_id in outcome_ids:
        recorded[outcome_id] = await client.record_outcome(
            customer_id=CUSTOMER, outcome_id=outcome_id, outcome_type="resolution"
        )
    return recorded


async def test_typescript_and_python_record_each_outcome_once_and_see_one_balance(
    server: ServiceProcess, node: Path, node_examples: Path
) -> None:
    """Both clients record concurrently; each outcome is in the ledger once; balances agree."""
    async with RatingClient(server.address) as python:
        await python.put_rate_card(
            rate_card_id="cross-card", currency_code="USD", prices={"resolution": PRICE}
        )
        await python.put_customer(customer_id=CUSTOMER, rate_card_id="cross-card")
        await python.create_bucket(
            customer_id=CUSTOMER,
            bucket_id="cross-prepaid",
            outcome_type="resolution",
            quantity=BUCKET_UNITS,
        )

        ts_lines, py_recorded = await asyncio.gather(
            run_node(
                node,
                node_examples / "record.js",
                server.address,
                CUSTOMER,
                "resolution",
                *TS_OUTCOMES,
                SHARED,
            ),
            record_in_python(python, [*PY_OUTCOMES, SHARED]),
        )
        ts_balance, py_balance = await asyncio.gather(
            run_node(node, node_examples / "balance.js", server.address, CUSTOMER),
            python.get_balance(customer_id=CUSTOMER),
        )
        entries = [entry async for entry in python.iter_ledger_entries(customer_id=CUSTOMER)]

    ts_recorded = {line["outcome_id"]: line for line in ts_lines}
    assert list(ts_recorded) == [*TS_OUTCOMES, SHARED]

    # The shared outcome: recorded once, and the other client got that same answer replayed.
    ts_shared, py_shared = ts_recorded[SHARED], py_recorded[SHARED]
    assert sorted([ts_shared["replayed"], py_shared.replayed]) == [False, True]
    assert ts_shared["ledger_sequence"] == py_shared.ledger_sequence
    assert Decimal(ts_shared["charged"]) == py_shared.charged.amount
    assert ts_shared["units_from_buckets"] == py_shared.units_from_buckets
    # Every other outcome was fresh for the client that recorded it.
    assert not any(ts_recorded[o]["replayed"] for o in TS_OUTCOMES)
    assert not any(py_recorded[o].replayed for o in PY_OUTCOMES)

    # The ledger: each outcome rated exactly once, at the sequence its recorder was told.
    all_outcomes = [*TS_OUTCOMES, *PY_OUTCOMES, SHARED]
    rated = [entry for entry in entries if entry.kind == "OUTCOME_RATED"]
    assert Counter(entry.outcome_id for entry in rated) == Counter(all_outcomes)
    sequence_of = {entry.outcome_id: entry.sequence for entry in rated}
    assert {o: ts_recorded[o]["ledger_sequence"] for o in TS_OUTCOMES} == {
        o: sequence_of[o] for o in TS_OUTCOMES
    }
    assert {o: py_recorded[o].ledger_sequence for o in PY_OUTCOMES} == {
        o: sequence_of[o] for o in PY_OUTCOMES
    }
    assert [entry.sequence for entry in entries] == list(range(1, len(entries) + 1))

    # One balance, whoever reads it.
    [ts_view] = ts_balance
    billable = len(all_outcomes) - BUCKET_UNITS
    assert py_balance.period_outcomes == len(all_outcomes)
    assert py_balance.period_charged.amount == billable * PRICE
    assert ts_view == {
        "customer_id": CUSTOMER,
        "ledger_sequence": py_balance.ledger_sequence,
        "period_outcomes": py_balance.period_outcomes,
        "period_charged": str(py_balance.period_charged.amount),
        "currency_code": py_balance.period_charged.currency_code,
        "pending_outcomes": py_balance.pending_outcomes,
        "pending_charge": str(py_balance.pending_charge.amount),
        "buckets": [
            {"bucket_id": b.bucket_id, "remaining": b.remaining, "held": b.held}
            for b in py_balance.buckets
        ],
    }
    assert ts_view["buckets"] == [{"bucket_id": "cross-prepaid", "remaining": 0, "held": 0}]
