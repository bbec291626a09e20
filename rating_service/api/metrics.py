"""The RPC metrics: every unary call counted by method, final status code and caller, and timed.

The caller is the name ``auth.Authenticator`` found for the call's token (never the token).

The collectors themselves live in ``rating_service.metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import Counter

from rating_service.api.interceptors import CALLER, Context, Unary, UnaryInterceptor
from rating_service.metrics import RPC_SECONDS, RPCS


def _code_label(code: object) -> str:
    code = code or grpc.StatusCode.OK
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class MetricsInterceptor(UnaryInterceptor):
    """Counts and times every unary call by its method, final status code and caller."""

    def wrap(self, method: str, inner: Unary) -> Unary:
        name = method.rsplit("/", 1)[-1]
        # The labelled children are looked up once (per status code and caller, on its first
        # call), not on every call: ``labels()`` costs as much as the counting.
        counters: dict[tuple[object, str], Counter] = {}
        observers: dict[str, Callable[[float], None]] = {}
        clock = time.perf_counter
        caller_of = CALLER.get

        async def timed(request: Any, context: Context) -> Any:
            started = clock()
            try:
                return await inner(request, context)
            finally:
                code, caller = context.code(), caller_of()
                counter = counters.get((code, caller))
                if counter is None:
                    counter = counters[code, caller] = RPCS.labels(name, _code_label(code), caller)
                counter.inc()
                observe = observers.get(caller)
                if observe is None:
                    observe = observers[caller] = RPC_SECONDS.labels(name, caller).observe
                observe(clock() - started)

        return timed
