"""A server started in the test's own process with settings of the test's choosing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from rating_service.app import Service, start
from rating_service.config import Settings


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Service, grpc.aio.Channel]]:
    """The running service and a channel to it; both closed on exit (the service gracefully)."""
    service = await start(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            yield service, channel
    finally:
        await service.stop(grace=1.0)
