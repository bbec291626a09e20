"""With the tracing extra installed, every call is a server span that continues the caller's
trace and carries its gRPC status."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import customer_on_rate_card, record
from tracing_support import recorded_spans, spans_named

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
TRACEPARENT = f"00-{TRACE_ID:032x}-00f067aa0ba902b7-01"


async def test_a_call_is_a_server_span_in_the_callers_trace(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    recorded_spans().clear()
    customer = await customer_on_rate_card(stub)

    await stub.RecordOutcome(record(customer, "conv-1"), metadata=(("traceparent", TRACEPARENT),))

    (span,) = spans_named("rating.v1.RatingService/RecordOutcome")
    assert span.context is not None
    assert span.context.trace_id == TRACE_ID
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "rpc.system": "grpc",
        "rpc.service": "rating.v1.RatingService",
        "rpc.method": "RecordOutcome",
        "rpc.grpc.status_code": 0,
    }


async def test_a_refused_call_is_an_error_span_with_its_code(
    stub: rating_pb2_grpc.RatingServiceStub,
) -> None:
    recorded_spans().clear()

    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetBalance(pb.GetBalanceRequest(customer_id="nobody"))

    (span,) = spans_named("rating.v1.RatingService/GetBalance")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
