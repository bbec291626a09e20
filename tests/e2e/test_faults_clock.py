"""The clock steps back: the service answers UNAVAILABLE/CLOCK_BEHIND until it has caught up.

Every instant the ledger records must come after those it already holds: an entry
recorded "before" the one ahead of it in the chain, an outcome priced or a reversal
counted in a month the ledger has already left, or a quote at a time already past,
would be a wrong success. So while the service's clock reads earlier than an instant
it has used, every call that needs the time refuses (and writes nothing); once the
clock has caught up, the same process answers again. A step back of up to a second
(a clock being corrected) is absorbed instead: the latest instant is used again.

In-process (``rating_service.app.start`` with a clock the test moves), on both engines,
through the Python client; ``rating-service verify`` runs at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from faults import OK, PRICES, answer_of, kinds_and_keys, ledger
from rating_client import LedgerEntry, NewOutcome, RatingClient
from service_process import run_command

from rating_service.app import Service, start
from rating_service.config import Settings

if TYPE_CHECKING:
    from conftest import MovableClock

pytestmark = pytest.mark.faults

CLOCK_BEHIND = "UNAVAILABLE CLOCK_BEHIND"
STEP = timedelta(hours=1)
"""How far the clock steps back."""
SMALL_STEP = timedelta(milliseconds=500)
"""A correction the service absorbs."""
CUSTOMER = "clock-co"
PENDING = "pending-1"


async def _started(database_url: str, clock: MovableClock) -> Service:
    return await start(
        Settings(database_url=database_url, listen="127.0.0.1:0", sweep_interval=0.05), clock
    )


@pytest.fixture
async def client(service: Service) -> AsyncIterator[RatingClient]:
    """A client that does not retry: every UNAVAILABLE reaches the test."""
    async with RatingClient(f"127.0.0.1:{service.port}", max_attempts=1) as opened:
        await opened.put_rate_card(
            rate_card_id="card",
            currency_code="USD",
            prices=PRICES,
            settlement_windows={"resolution": timedelta(hours=24)},
        )
        await opened.put_customer(customer_id=CUSTOMER, rate_card_id="card")
        await opened.create_bucket(
            customer_id=CUSTOMER, bucket_id="prepaid", outcome_type="resolution", quantity=10
        )
        await opened.record_outcome(
            customer_id=CUSTOMER, outcome_id=PENDING, outcome_type="resolution", state="PENDING"
        )
        for i in range(3):
            await opened.record_outcome(
                customer_id=CUSTOMER, outcome_id=f"before-{i}", outcome_type="resolution"
            )
        yield opened


def _calls(client: RatingClient, clock: MovableClock) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every RPC that needs the time, each with its idempotency key (sent again later)."""
    true_now = clock() - clock.offset  # what a caller whose clock is right would send
    return {
        "RecordOutcome": lambda: client.record_outcome(
            customer_id=CUSTOMER, outcome_id="during-1", outcome_type="resolution"
        ),
        "RecordOutcome(occurred_at: the caller's now)": lambda: client.record_outcome(
            customer_id=CUSTOMER,
            outcome_id="during-2",
            outcome_type="resolution",
            occurred_at=true_now,
        ),
        "RecordOutcomes": lambda: client.record_outcomes(
            outcomes=[
                NewOutcome(
                    customer_id=CUSTOMER, outcome_id=f"during-{i}", outcome_type="escalation"
                )
                for i in range(3, 6)
            ]
        ),
        "ConfirmOutcome": lambda: client.confirm_outcome(customer_id=CUSTOMER, outcome_id=PENDING),
        "ReverseOutcome": lambda: client.reverse_outcome(
            customer_id=CUSTOMER, outcome_id="before-0", reason="reopened"
        ),
        "ConsumeBucket": lambda: client.consume_bucket(
            customer_id=CUSTOMER, request_id="consume-1", quantity=2, bucket_id="prepaid"
        ),
        "CreateBucket": lambda: client.create_bucket(
            customer_id=CUSTOMER, bucket_id="during-bucket", outcome_type="escalation", quantity=4
        ),
        "PutCustomer": lambda: client.put_customer(customer_id="new-co", rate_card_id="card"),
        "PutRateCard": lambda: client.put_rate_card(
            rate_card_id="during-card", currency_code="USD", prices=PRICES
        ),
        "QuoteCost": lambda: client.quote_cost(
            customer_id=CUSTOMER, outcome_type="resolution", quantity=2
        ),
        "GetBalance": lambda: client.get_balance(customer_id=CUSTOMER),
    }


async def _answers(calls: dict[str, Callable[[], Awaitable[object]]]) -> dict[str, str]:
    return {name: await answer_of(call()) for name, call in calls.items()}


def _verify(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`rating-service verify` on the database, while the service may still run."""
    return run_command("verify", {**os.environ, "RATING_DATABASE_URL": database_url}, cwd)


def _recorded_in_order(entries: list[LedgerEntry]) -> bool:
    """Whether no entry was recorded before the one ahead of it in the chain."""
    times = [e.recorded_at for e in entries]
    return times == sorted(times)


async def test_every_call_that_needs_the_time_answers_unavailable_while_the_clock_is_behind(
    client: RatingClient, clock: MovableClock
) -> None:
    """Writes and time-dependent reads alike: nothing is decided at an instant already passed,
    and the caller's own clock is not blamed (no INVALID_ARGUMENT for "the future")."""
    clock.advance(-STEP)

    answers = await _answers(_calls(client, clock))

    assert answers == dict.fromkeys(answers, CLOCK_BEHIND)


async def test_the_ledger_gains_nothing_while_the_clock_is_behind_and_still_reads(
    client: RatingClient, clock: MovableClock
) -> None:
    """ListLedgerEntries needs no clock and answers; the refused calls added no entry."""
    before = await ledger(client, CUSTOMER)
    clock.advance(-STEP)

    await _answers(_calls(client, clock))
    during = await ledger(client, CUSTOMER)

    assert during == before


async def test_the_same_process_answers_again_once_the_clock_has_caught_up(
    client: RatingClient, clock: MovableClock, database_url: str, tmp_path: Path
) -> None:
    """The refused calls, sent again, take effect exactly once, in time order; verify passes."""
    clock.advance(-STEP)
    calls = _calls(client, clock)
    await _answers(calls)

    clock.advance(STEP + timedelta(seconds=1))
    answers = await _answers(calls)
    entries = await ledger(client, CUSTOMER)

    assert answers == dict.fromkeys(answers, OK)
    counts = kinds_and_keys(entries)
    assert [counts[("OUTCOME_RATED", f"during-{i}")] for i in range(1, 6)] == [1] * 5
    assert counts[("OUTCOME_RATED", PENDING)] == 1
    assert counts[("OUTCOME_REVERSED", "before-0")] == 1
    assert counts[("BUCKET_CONSUMED", "consume-1")] == 1
    assert counts[("BUCKET_CREATED", "during-bucket")] == 1
    assert _recorded_in_order(entries)
    verified = _verify(database_url, tmp_path)
    assert verified.returncode == 0, verified.stdout


async def test_a_step_back_within_a_second_is_absorbed_and_time_never_runs_backwards(
    client: RatingClient, clock: MovableClock
) -> None:
    """A clock being corrected does not make calls fail; the ledger's times never go back."""
    clock.advance(-SMALL_STEP)

    answers = await _answers(_calls(client, clock))
    entries = await ledger(client, CUSTOMER)

    assert answers == dict.fromkeys(answers, OK)
    assert _recorded_in_order(entries)


async def test_a_service_started_with_its_clock_behind_the_ledger_waits_for_it(
    database_url: str, clock: MovableClock, tmp_path: Path
) -> None:
    """After a restart the service knows the latest instant from the ledger itself."""
    first = await _started(database_url, clock)
    try:
        async with RatingClient(f"127.0.0.1:{first.port}", max_attempts=1) as client:
            await client.put_rate_card(rate_card_id="card", currency_code="USD", prices=PRICES)
            await client.put_customer(customer_id=CUSTOMER, rate_card_id="card")
            await client.record_outcome(
                customer_id=CUSTOMER, outcome_id="before-restart", outcome_type="resolution"
            )
    finally:
        await first.stop(grace=1.0)

    clock.advance(-STEP)
    second = await _started(database_url, clock)
    try:
        async with RatingClient(f"127.0.0.1:{second.port}", max_attempts=1) as client:
            behind = await _answers(_calls(client, clock))
            clock.advance(STEP + timedelta(seconds=1))
            caught_up = await answer_of(
                client.record_outcome(
                    customer_id=CUSTOMER, outcome_id="after-restart", outcome_type="resolution"
                )
            )
            entries = await ledger(client, CUSTOMER)
    finally:
        await second.stop(grace=1.0)
    verified = _verify(database_url, tmp_path)

    assert behind == dict.fromkeys(behind, CLOCK_BEHIND)
    assert caught_up == OK
    assert [e.outcome_id for e in entries] == ["before-restart", "after-restart"]
    assert _recorded_in_order(entries)
    assert verified.returncode == 0, verified.stdout
