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
from typing import Any

from grpc_status import rpc_status

from rating_service.api.errors import ShuttingDown, to_status
from rating_service.api.interceptors import Context, Unary, UnaryInterceptor

QUIET_PERIOD = 0.1
"""How long no call may run before the server stops, so queued arrivals are refused, not cancelled."""


class DrainInterceptor(UnaryInterceptor):
    def __init__(self, guarded_prefix: str) -> None:
        self._prefix = guarded_prefix
        self._draining = False
        self._running = 0
        self._last_arrival = 0.0
        self._idle = asyncio.Event()
        """Set when no call runs; kept up to date only while draining (not on every call)."""
        self._idle.set()
        self._refusal = rpc_status.to_status(to_status(ShuttingDown()))

    def applies_to(self, method: str) -> bool:
        return method.startswith(self._prefix)

    def wrap(self, method: str, inner: Unary) -> Unary:
        async def guarded(request: Any, context: Context) -> Any:
            self._last_arrival = time.monotonic()
            if self._draining:
                await context.abort_with_status(self._refusal)
            self._running += 1
            try:
                return await inner(request, context)
            finally:
                self._running -= 1
                if self._draining and not self._running:
                    self._idle.set()

        return guarded

    async def drain(self, grace: float) -> None:
        """Refuse new calls; return once none runs and none has arrived for a quiet period.

        Calls already sent keep arriving for a while after the signal (they wait
        in gRPC's queues): each is answered UNAVAILABLE, and the server stops only
        when they have stopped coming, or when ``grace`` seconds are up.
        """
        self._draining = True
        if self._running:
            self._idle.clear()  # the last running call sets it
        else:
            self._idle.set()
        deadline = time.monotonic() + grace
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(self._idle.wait(), left)
            except TimeoutError:
                return
            quiet_for = time.monotonic() - self._last_arrival
            if quiet_for >= QUIET_PERIOD and self._running == 0:
                return
            await asyncio.sleep(
                min(QUIET_PERIOD - quiet_for, max(deadline - time.monotonic(), 0)) or 0.01
            )
