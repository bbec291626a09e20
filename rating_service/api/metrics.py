"""The RPC metrics: every unary call counted by method and final status code, and timed.

The collectors themselves live in ``rating_service.metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter

from rating_service.api.interceptors import Context, Unary, UnaryInterceptor
from rating_service.metrics import RPC_SECONDS, RPCS


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
