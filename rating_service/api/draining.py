"""Graceful drain: on shutdown, refuse new calls with UNAVAILABLE and let running ones finish.

``grpc.aio``'s ``server.stop(grace)`` cancels calls that have arrived but not yet
reached a handler (they fail with CANCELLED, which clients do not retry). So
before stopping, the server keeps running: calls that reach it are answered
UNAVAILABLE (safe to retry: nothing was written) while the calls already
running finish; only once none runs does the server stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from grpc_status import rpc_status

from rating_service.api.errors import ShuttingDown, to_status

MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

QUIET_PERIOD = 0.1
"""How long no call may run before the server stops, so queued arrivals are refused, not cancelled."""


class DrainInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, guarded_prefix: str) -> None:
        self._prefix = guarded_prefix
        self._draining = False
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or not handler_call_details.method.startswith(self._prefix)
        ):
            return handler
        inner = handler.unary_unary

        async def guarded(request: Any, context: Context) -> Any:
            if self._draining:
                await context.abort_with_status(rpc_status.to_status(to_status(ShuttingDown())))
            self._running += 1
            self._idle.clear()
            try:
                # The stubs type unary handlers as sync; under grpc.aio they are coroutines.
                return await inner(request, context)  # type: ignore[arg-type]
            finally:
                self._running -= 1
                if self._running == 0:
                    self._idle.set()

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def drain(self, grace: float) -> None:
        """Refuse new calls and wait (at most ``grace`` s) until none runs for a quiet period."""
        self._draining = True
        deadline = time.monotonic() + grace
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(self._idle.wait(), left)
            except TimeoutError:
                return
            await asyncio.sleep(min(QUIET_PERIOD, max(deadline - time.monotonic(), 0)))
            if self._running == 0:
                return
