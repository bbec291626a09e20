"""Fixtures shared by the suites: a real server on a local port over a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from rating_client.v1 import rating_pb2_grpc

from rating_service.app import Service, start
from rating_service.config import Settings


class MovableClock:
    """The real time, plus an offset a test can move forward (months, windows)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "rating.db"


@pytest.fixture
def database_url(database_path: Path) -> str:
    return f"sqlite+aiosqlite:///{database_path}"


@pytest.fixture
async def service(database_url: str, clock: MovableClock) -> AsyncIterator[Service]:
    settings = Settings(database_url=database_url, listen="127.0.0.1:0", sweep_interval=0.05)
    running = await start(settings, clock)
    yield running
    await running.stop(grace=1.0)


@pytest.fixture
async def channel(service: Service) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> rating_pb2_grpc.RatingServiceStub:
    return rating_pb2_grpc.RatingServiceStub(channel)
