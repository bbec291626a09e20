"""Per-caller rate limits (``rate=`` in the tokens file): past it a call is RESOURCE_EXHAUSTED /
``RATE_LIMITED`` with a ``google.rpc.RetryInfo``, writes nothing, and the clients wait as
told and succeed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from auth_support import SendToken, Tokens, error_info, write_tokens
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rating_client import RatingClient
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, record

from rating_service.app import Service, start
from rating_service.config import Settings

pytestmark = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)

CALLERS = {"operator": "admin", "slow": "record,read rate=0.2", "steady": "record,read rate=4"}
"""``slow`` may make one call every 5 s (a burst of one); ``steady`` four a second."""


@pytest.fixture
async def limited(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Service, Tokens]]:
    tokens = write_tokens(tmp_path / "tokens", CALLERS)
    settings = Settings(
        database_url=database_url, listen="127.0.0.1:0", auth_tokens_file=str(tokens.path)
    )
    running = await start(settings)
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{running.port}", interceptors=[SendToken(tokens["operator"])]
    ) as channel:
        await customer_on_rate_card(rating_pb2_grpc.RatingServiceStub(channel), "acme")
    yield running, tokens
    await running.stop(grace=1.0)


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            return retry.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError("no RetryInfo")


async def test_calls_past_a_callers_rate_are_refused_with_when_to_retry_and_write_nothing(
    limited: tuple[Service, Tokens],
) -> None:
    service, tokens = limited
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{service.port}", interceptors=[SendToken(tokens["slow"])]
    ) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        answers = await asyncio.gather(
            *(stub.RecordOutcome(record("acme", f"conv-{n}")) for n in range(6)),
            return_exceptions=True,
        )
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{service.port}", interceptors=[SendToken(tokens["operator"])]
        ) as admin_channel:
            entries = await all_entries(rating_pb2_grpc.RatingServiceStub(admin_channel), "acme")

    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    answered = [a for a in answers if isinstance(a, pb.RecordOutcomeResponse)]
    assert len(answered) == 1
    assert len(refused) == 5
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(error)
        assert (info.reason, dict(info.metadata)) == (
            "RATE_LIMITED",
            {"caller": "slow", "rate_per_second": "0.2"},
        )
        assert 0 < retry_delay(error) <= 5
    assert len([e for e in entries if e.outcome_id]) == 1


async def test_a_callers_limit_leaves_other_callers_alone(
    limited: tuple[Service, Tokens],
) -> None:
    service, tokens = limited
    async with (
        grpc.aio.insecure_channel(
            f"127.0.0.1:{service.port}", interceptors=[SendToken(tokens["slow"])]
        ) as slow_channel,
        grpc.aio.insecure_channel(
            f"127.0.0.1:{service.port}", interceptors=[SendToken(tokens["operator"])]
        ) as admin_channel,
    ):
        slow = rating_pb2_grpc.RatingServiceStub(slow_channel)
        admin = rating_pb2_grpc.RatingServiceStub(admin_channel)
        await slow.GetBalance(pb.GetBalanceRequest(customer_id="acme"))
        with pytest.raises(grpc.aio.AioRpcError):
            await slow.GetBalance(pb.GetBalanceRequest(customer_id="acme"))

        balances = [
            await admin.GetBalance(pb.GetBalanceRequest(customer_id="acme")) for _ in range(20)
        ]

    assert len(balances) == 20


async def test_the_python_client_waits_as_told_and_every_call_succeeds(
    limited: tuple[Service, Tokens],
) -> None:
    """Ten calls at four a second: the client meets RATE_LIMITED and waits each time."""
    service, tokens = limited
    async with RatingClient(
        f"127.0.0.1:{service.port}", token=tokens["steady"], max_attempts=10
    ) as client:
        quotes = [
            await client.quote_cost(customer_id="acme", outcome_type="resolution", quantity=1)
            for _ in range(10)
        ]

    assert [q.unit_price.amount for q in quotes] == [Decimal("0.99")] * 10
