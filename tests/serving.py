"""A server started in the test's own process with settings of the test's choosing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import grpc

from rating_service.app import Service, start
from rating_service.config import Settings
from rating_service.service.clock import Clock, system_clock


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Service, grpc.aio.Channel]]:
    """The running service and a channel to it; both closed on exit (the service gracefully)."""
    service = await start(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            yield service, channel
    finally:
        await service.stop(grace=1.0)


@contextlib.contextmanager
def serving_in_thread(settings: Settings, clock: Clock = system_clock) -> Iterator[int]:
    """The service on an event loop of its own thread, for blocking callers (hypothesis
    drives only synchronous tests): its port. Stopped gracefully on exit."""
    started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]]
    started = concurrent.futures.Future()

    async def run() -> None:
        try:
            service = await start(settings, clock)
        except BaseException as error:
            started.set_exception(error)
            raise
        stop = asyncio.Event()
        started.set_result((asyncio.get_running_loop(), stop, service.port))
        try:
            await stop.wait()
        finally:
            await service.stop(grace=1.0)

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="service", daemon=True)
    thread.start()
    loop, stop, port = started.result(timeout=60)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
