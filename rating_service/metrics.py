"""Prometheus metrics: calls by method and code, their latency, and the ledger writer's commits.

Served on RATING_METRICS_LISTEN when it is set; the collectors exist either
way, so instrumented code never checks whether metrics are on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram, start_http_server

from rating_service.api.interceptors import Context, Unary, UnaryInterceptor

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
COMMIT_RETRIES = Counter(
    "rating_ledger_commit_retries",
    "Ledger transactions run again after the database aborted them as a deadlock or "
    "serialization failure (replicas sharing PostgreSQL); nothing of them was written",
)
COMMIT_FAILURES = Counter(
    "rating_ledger_commit_failures",
    "Ledger transactions that failed to commit (callers got UNAVAILABLE)",
)


def start_metrics_server(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")


def _code_label(code: object) -> str:
    code = code or grpc.StatusCode.OK
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class MetricsInterceptor(UnaryInterceptor):
    """Counts and times every unary call by its method and final status code."""

    def wrap(self, method: str, inner: Unary) -> Unary:
        name = method.rsplit("/", 1)[-1]
        # The labelled children are looked up once (per status code, on its first
        # call), not on every call: ``labels()`` costs as much as the counting.
        counters: dict[object, Counter] = {}
        observe: Callable[[float], None] | None = None
        clock = time.perf_counter

        async def timed(request: Any, context: Context) -> Any:
            nonlocal observe
            started = clock()
            try:
                return await inner(request, context)
            finally:
                code = context.code()
                counter = counters.get(code)
                if counter is None:
                    counter = counters[code] = RPCS.labels(name, _code_label(code))
                counter.inc()
                if observe is None:
                    observe = RPC_SECONDS.labels(name).observe
                observe(clock() - started)

        return timed
