"""`serve` writes one JSON line per call (method, code, duration, caller, request id) and
echoes the request id to the caller; the body of a request never reaches the log."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import ServiceProcess
from support import customer_on_rate_card, record

SECRET_ATTRIBUTE = "conversation-text-that-must-not-be-logged"


def access_lines(server: ServiceProcess, method: str) -> list[dict[str, object]]:
    """The access log's lines for ``method``, once there is one: a refused call's status can
    reach the caller a moment before its line is written."""
    deadline = time.monotonic() + 10
    while True:
        lines = []
        for line in server.output().splitlines():
            parsed = json.loads(line)  # every line is JSON: fails the test otherwise
            if parsed["logger"] == "rating_service.access" and parsed["method"] == method:
                lines.append(parsed)
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


async def echoed_request_id(call: grpc.aio.UnaryUnaryCall[Any, Any]) -> str:
    return str(dict(await call.trailing_metadata())["x-request-id"])


async def test_each_call_is_one_line_with_the_request_id_the_caller_sent_and_got_back(
    server: ServiceProcess,
) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        request = record(customer, "conv-1")
        request.attributes["transcript"] = SECRET_ATTRIBUTE
        call = stub.RecordOutcome(request, metadata=(("x-request-id", "req-42"),))
        await call
        echoed = await echoed_request_id(call)

    lines = access_lines(server, "RecordOutcome")
    assert echoed == "req-42"
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("code", "caller", "request_id")} == {
        "code": "OK",
        "caller": "anonymous",
        "request_id": "req-42",
    }
    assert isinstance(lines[0]["duration_ms"], float)
    assert SECRET_ATTRIBUTE not in server.output()


async def test_a_refused_call_gets_a_made_request_id_beside_its_error_details(
    server: ServiceProcess,
) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetBalance(pb.GetBalanceRequest(customer_id="nobody"))

    error = refused.value
    request_id = str(dict(error.trailing_metadata())["x-request-id"])
    trailers = dict(error.trailing_metadata())
    (line,) = access_lines(server, "GetBalance")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "grpc-status-details-bin" in trailers  # the rich error survives the echo
    assert len(request_id) == 32
    assert (line["code"], line["request_id"]) == ("NOT_FOUND", request_id)


async def test_an_unusable_request_id_is_replaced_not_logged(server: ServiceProcess) -> None:
    hostile = "x" * 500
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        call = stub.GetBalance(
            pb.GetBalanceRequest(customer_id=customer), metadata=(("x-request-id", hostile),)
        )
        await call
        echoed = await echoed_request_id(call)

    assert echoed != hostile
    assert hostile not in server.output()
