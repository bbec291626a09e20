"""Prometheus metrics: calls by method and code, their latency, and the ledger writer's commits.

Served on RATING_METRICS_LISTEN when it is set; the collectors exist either
way, so instrumented code never checks whether metrics are on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from prometheus_client import Counter, Histogram, start_http_server

RPCS = Counter("rating_rpcs", "gRPC calls answered, by method and status code", ["method", "code"])
RPC_SECONDS = Histogram(
    "rating_rpc_seconds",
    "Time to answer a gRPC call, by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
COMMIT_BATCH = Histogram(
    "rating_ledger_commit_batch_size",
    "Calls committed together in one ledger transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
COMMIT_FAILURES = Counter(
    "rating_ledger_commit_failures",
    "Ledger transactions that failed to commit (callers got UNAVAILABLE)",
)


def start_metrics_server(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")


Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every unary call by its method and final status code."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary

        async def timed(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            try:
                # The stubs type unary handlers as sync; under grpc.aio they are coroutines.
                return await inner(request, context)  # type: ignore[arg-type]
            finally:
                code = context.code() or grpc.StatusCode.OK
                name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                RPCS.labels(method, name).inc()
                RPC_SECONDS.labels(method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
