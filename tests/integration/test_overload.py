"""Overload: past its concurrency bound the server sheds calls quickly, and writes none of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, record

from rating_service.app import Service, start
from rating_service.config import Settings


@pytest.fixture
async def small_server(tmp_path: Path) -> AsyncIterator[Service]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}",
        listen="127.0.0.1:0",
        max_concurrent_rpcs=4,
    )
    running = await start(settings)
    yield running
    await running.stop(grace=1.0)


async def test_calls_beyond_the_concurrency_bound_get_resource_exhausted_and_write_nothing(
    small_server: Service,
) -> None:
    """200 concurrent calls on a server bounded at 4: the shed ones fail fast, the rest are recorded once."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)

        answers = await asyncio.gather(
            *(stub.RecordOutcome(record(customer, f"conv-{i}")) for i in range(200)),
            return_exceptions=True,
        )

        shed = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        recorded = [a for a in answers if isinstance(a, pb.RecordOutcomeResponse)]
        assert shed
        assert {e.code() for e in shed} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert len(await all_entries(stub, customer)) == len(recorded)
