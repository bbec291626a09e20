"""The daily usage counts: kept by the write path, backfilled by migration 0007, checked by verify."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
from alembic import command
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import create_bucket, customer_on_rate_card, execute_directly, record

from rating_service.app import start
from rating_service.config import Settings
from rating_service.ledger.engine import create_engines
from rating_service.ledger.migrate import alembic_config
from rating_service.ledger.verify import Report, verify

if TYPE_CHECKING:
    from conftest import MovableClock


async def verified(database_url: str) -> Report:
    engines = create_engines(database_url)
    try:
        return await verify(engines)
    finally:
        await engines.dispose()


async def some_usage(stub: rating_pb2_grpc.RatingServiceStub) -> pb.PreviewInvoiceResponse:
    """Settled, bucket-covered, reversed and pending outcomes; the month's invoice preview."""
    customer = await customer_on_rate_card(stub, price="0.99")
    await create_bucket(stub, customer, "annual", 2)
    for i in range(5):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))
    await stub.RecordOutcome(record(customer, "pending", state=pb.OUTCOME_STATE_PENDING))
    for outcome_id in ("conv-0", "conv-4"):  # one covered, one charged
        await stub.ReverseOutcome(
            pb.ReverseOutcomeRequest(customer_id=customer, outcome_id=outcome_id, reason="r")
        )
    answer: pb.PreviewInvoiceResponse = await stub.PreviewInvoice(
        pb.PreviewInvoiceRequest(customer_id=customer)
    )
    return answer


async def test_a_ledger_from_before_the_counts_is_backfilled_by_the_migration(
    database_url: str, clock: MovableClock
) -> None:
    """Down to 0004 (no counts, no rate card on outcomes) and up again: the same invoice, the
    rate card found, and verify replays the counts."""
    settings = Settings(database_url=database_url, listen="127.0.0.1:0")
    running = await start(settings, clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        before = await some_usage(rating_pb2_grpc.RatingServiceStub(channel))
    await running.stop(grace=1.0)
    assert (await verified(database_url)).ok

    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0004")
    await asyncio.to_thread(command.upgrade, config, "head")

    running = await start(settings, clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = rating_pb2_grpc.RatingServiceStub(channel)
            after = await stub.PreviewInvoice(pb.PreviewInvoiceRequest(customer_id="acme"))
            explained = await stub.ExplainOutcome(
                pb.ExplainOutcomeRequest(customer_id="acme", outcome_id="conv-1")
            )
    finally:
        await running.stop(grace=1.0)
    assert after == before
    assert [(line.settled, line.reversed, line.covered) for line in after.lines] == [(5, 2, 1)]
    assert explained.rate_card_id == "card-acme"
    assert (await verified(database_url)).ok


async def test_verify_names_a_usage_count_edited_behind_the_services_back(
    database_url: str, clock: MovableClock
) -> None:
    running = await start(Settings(database_url=database_url, listen="127.0.0.1:0"), clock)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        await some_usage(rating_pb2_grpc.RatingServiceStub(channel))
    await running.stop(grace=1.0)

    await execute_directly(database_url, "UPDATE usage_days SET settled = settled + 1")

    report = await verified(database_url)
    assert not report.ok
    assert any("usage of resolution" in p and "'settled': 6" in p for p in report.problems)


async def test_a_refused_item_of_a_batch_leaves_no_count(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """In one RecordOutcomes call, an item refused between its neighbours (no price for its
    type) adds nothing; the month counts the others exactly."""
    customer = await customer_on_rate_card(stub, price="0.99")
    items = [record(customer, f"conv-{i}") for i in range(3)]
    items[1].outcome_type = "unpriced"
    answer = await stub.RecordOutcomes(pb.RecordOutcomesRequest(requests=items))
    assert [r.WhichOneof("result") for r in answer.results] == ["response", "error", "response"]

    invoice = await stub.PreviewInvoice(pb.PreviewInvoiceRequest(customer_id=customer))

    assert [(line.outcome_type, line.settled) for line in invoice.lines] == [("resolution", 2)]
    assert (invoice.total.units, invoice.total.nanos) == (1, 980_000_000)
