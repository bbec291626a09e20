"""Metrics: every call is counted by method and status code, and timed."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import customer_on_rate_card, record


def calls(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("rating_rpcs_total", {"method": method, "code": code}) or 0.0


def timed(method: str) -> float:
    """How many calls of ``method`` the latency histogram has observed."""
    return REGISTRY.get_sample_value("rating_rpc_seconds_count", {"method": method}) or 0.0


async def test_answered_and_refused_calls_are_counted_by_method_and_code(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """One OK RecordOutcome and one NOT_FOUND GetBalance move their own counters by one.

    And the RecordOutcome is timed: its latency histogram observed one more call.
    """
    customer = await customer_on_rate_card(stub)
    ok_before = calls("RecordOutcome", "OK")
    missing_before = calls("GetBalance", "NOT_FOUND")
    timed_before = timed("RecordOutcome")

    await stub.RecordOutcome(record(customer, "conv-1"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetBalance(pb.GetBalanceRequest(customer_id="nobody"))

    assert calls("RecordOutcome", "OK") == ok_before + 1
    assert calls("GetBalance", "NOT_FOUND") == missing_before + 1
    assert timed("RecordOutcome") == timed_before + 1


COMMIT_SAMPLES = (
    "rating_ledger_commit_seconds_count",
    "rating_ledger_commit_batch_size_count",
    "rating_ledger_commit_batch_size_sum",
)


def commit_samples() -> list[float]:
    return [REGISTRY.get_sample_value(name) or 0.0 for name in COMMIT_SAMPLES]


async def test_each_group_commit_is_timed_and_sized(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    """A lone RecordOutcome is one commit: one more timing, one more batch of one call."""
    customer = await customer_on_rate_card(stub)
    before = commit_samples()

    await stub.RecordOutcome(record(customer, "conv-1"))

    assert [a - b for a, b in zip(commit_samples(), before, strict=True)] == [1, 1, 1]
