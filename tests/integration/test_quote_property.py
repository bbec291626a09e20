"""QuoteCost equals what recording that many outcomes then charges, and writes nothing.

Property-based against the real server: hypothesis draws 0 to 3 buckets
(some not yet valid, some already expired, random sizes and priorities),
k pending outcomes that hold bucket units first, and a quantity n. The quote
of n is then compared with recording n confirmed outcomes, taken in the order
the ledger applied them (their ledger_sequence).

How it runs: pytest-asyncio (asyncio_mode=auto) runs an async test decorated
with ``@given`` by driving each example's coroutine on the test's event loop,
the same loop the ``service`` and ``stub`` fixtures were created on. The
fixtures are function-scoped and so shared by all examples of one test run
(hence the suppressed ``function_scoped_fixture`` health check); each example
isolates itself with a fresh customer id on its own rate card.

Each example is kept cheap so that, when a property fails, hypothesis can
shrink it to a minimal scenario well within the suite's timeout: the k holds
and the n outcomes are each recorded with one RecordOutcomes call (one RPC
and one group commit instead of up to 30 sequential ones).

Buckets created already expired are closed by the server's expiry sweep,
which appends BUCKET_EXPIRED entries in the background. Before reading the
ledger head, each example runs that same sweep itself
(``service.store.expire_buckets``, serialized by the writer), so no sweep can
move the head between the two reads around QuoteCost.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import amount, create_bucket, customer_on_rate_card, record

from rating_service.app import Service

if TYPE_CHECKING:
    from conftest import MovableClock

DAY = timedelta(days=1)


@dataclass(frozen=True)
class PlannedBucket:
    quantity: int
    timing: str  # "active", "scheduled" (not yet valid) or "expired"
    expires_in_days: int
    priority: int


@dataclass(frozen=True)
class Scenario:
    price: str
    buckets: tuple[PlannedBucket, ...]
    pending: int
    quantity: int


planned_buckets = st.builds(
    PlannedBucket,
    quantity=st.integers(min_value=1, max_value=20),
    timing=st.sampled_from(["active", "active", "scheduled", "expired"]),
    expires_in_days=st.integers(min_value=1, max_value=3),
    priority=st.integers(min_value=0, max_value=2),
)
scenarios = st.builds(
    Scenario,
    price=st.sampled_from(["0.99", "1.25", "0.333333333", "0"]),
    buckets=st.lists(planned_buckets, max_size=3).map(tuple),
    pending=st.integers(min_value=0, max_value=10),
    quantity=st.integers(min_value=0, max_value=30),
)


async def create_planned(
    stub: rating_pb2_grpc.RatingServiceStub,
    customer: str,
    index: int,
    plan: PlannedBucket,
    now: datetime,
) -> None:
    if plan.timing == "scheduled":
        valid_from, valid_until = now + DAY, now + (1 + plan.expires_in_days) * DAY
    elif plan.timing == "expired":
        valid_from, valid_until = now - 10 * DAY, now - plan.expires_in_days * DAY
    else:
        valid_from, valid_until = now - DAY, now + plan.expires_in_days * DAY
    await create_bucket(
        stub,
        customer,
        f"b{index}",
        plan.quantity,
        valid_from=valid_from,
        valid_until=valid_until,
        priority=plan.priority,
    )


async def record_all(
    stub: rating_pb2_grpc.RatingServiceStub,
    customer: str,
    prefix: str,
    count: int,
    state: int = pb.OUTCOME_STATE_CONFIRMED,
) -> list[pb.RecordOutcomeResponse]:
    """Records ``count`` outcomes in one RecordOutcomes call; answers in ledger order."""
    if count == 0:
        return []
    batch = await stub.RecordOutcomes(
        pb.RecordOutcomesRequest(
            requests=[record(customer, f"{prefix}-{i}", state=state) for i in range(count)]
        )
    )
    assert all(r.WhichOneof("result") == "response" for r in batch.results), batch
    return sorted((r.response for r in batch.results), key=lambda r: r.ledger_sequence)


async def ledger_head(stub: rating_pb2_grpc.RatingServiceStub, customer: str) -> int:
    balance = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))
    return int(balance.ledger_sequence)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios)
async def test_quote_cost_equals_what_recording_that_many_outcomes_charges_and_writes_nothing(
    service: Service,
    stub: rating_pb2_grpc.RatingServiceStub,
    clock: MovableClock,
    scenario: Scenario,
) -> None:
    """Covered units, total and lines of the quote match the n outcomes recorded after it."""
    customer = await customer_on_rate_card(stub, f"quote-{uuid.uuid4().hex}", price=scenario.price)
    for index, plan in enumerate(scenario.buckets):
        await create_planned(stub, customer, index, plan, clock())
    await record_all(stub, customer, "pending", scenario.pending, pb.OUTCOME_STATE_PENDING)
    await service.store.expire_buckets(clock())
    head_before = await ledger_head(stub, customer)

    quote = await stub.QuoteCost(
        pb.QuoteCostRequest(
            customer_id=customer, outcome_type="resolution", quantity=scenario.quantity
        )
    )

    head_after_quote = await ledger_head(stub, customer)
    recorded = await record_all(stub, customer, "conv", scenario.quantity)
    drawn = [r.bucket_id for r in recorded if r.units_from_buckets]
    assert head_after_quote == head_before
    assert quote.units_covered == sum(r.units_from_buckets for r in recorded)
    assert quote.units_billable == scenario.quantity - quote.units_covered
    assert amount(quote.total) == sum((amount(r.charged) for r in recorded), Decimal(0))
    assert quote.total.currency_code == "USD"
    assert [(line.bucket_id, line.units) for line in quote.lines] == [
        (bucket_id, len(list(run))) for bucket_id, run in itertools.groupby(drawn)
    ]
    assert all(r.unit_price == quote.unit_price for r in recorded)
