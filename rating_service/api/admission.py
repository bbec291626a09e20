"""Admission of RatingService calls: load shedding, and the graceful drain at shutdown.

Load shedding counts the calls that reached a handler, whose whole request has
arrived: past ``max_running`` of them a call is answered RESOURCE_EXHAUSTED
(reason ``OVERLOADED``; nothing was written). ``grpc.aio.server``'s own
``maximum_concurrent_rpcs`` counts every stream whose headers have arrived, so
clients that send headers and never the message (half-open streams) would fill
it and starve every service, health included; this count leaves them out, and
the health service outside (each connection's streams are bounded by
``grpc.max_concurrent_streams`` instead, see ``server``).

Drain: ``grpc.aio``'s ``server.stop(grace)`` cancels calls that have arrived
but not yet reached a handler (they fail with CANCELLED, which clients do not
retry). So before stopping, the server keeps running: calls that reach it are answered
UNAVAILABLE (safe to retry: nothing was written) while the calls already
running finish; only once none runs does the server stop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from grpc_status import rpc_status

from rating_service.api.errors import Overloaded, ShuttingDown, abort_with, to_status
from rating_service.api.interceptors import Context, Unary, UnaryInterceptor

QUIET_PERIOD = 0.1
"""How long no call may run before the server stops, so queued arrivals are refused, not cancelled."""


class Admission(UnaryInterceptor):
    """Admits the calls of the methods under ``guarded_prefix``: at most ``max_running`` at once,
    none once draining."""

    def __init__(self, guarded_prefix: str, max_running: int) -> None:
        self._prefix = guarded_prefix
        self._max_running = max_running
        self._draining = False
        self._running = 0
        self._last_arrival = 0.0
        self._idle = asyncio.Event()
        """Set when no call runs; kept up to date only while draining (not on every call)."""
        self._idle.set()
        self._refusal = rpc_status.to_status(to_status(ShuttingDown()))
        self._overloaded = rpc_status.to_status(to_status(Overloaded(max_running)))

    def applies_to(self, method: str) -> bool:
        return method.startswith(self._prefix)

    def wrap(self, method: str, inner: Unary) -> Unary:
        async def guarded(request: Any, context: Context) -> Any:
            self._last_arrival = time.monotonic()
            if self._draining:
                await abort_with(context, self._refusal)
            if self._running >= self._max_running:
                await abort_with(context, self._overloaded)
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
