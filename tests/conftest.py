"""Fixtures shared by the suites: a real server on a local port over a real SQLite file."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from rating_client.v1 import rating_pb2_grpc
from support import fresh_postgres_database

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


POSTGRES_URL = os.environ.get("RATING_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    """Every test of the service runs on both storage engines (PostgreSQL when it is reachable)."""
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("RATING_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    return str(request.param)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, for what only PostgreSQL has (its catalog, TRUNCATE)."""
    if not POSTGRES_URL:
        pytest.skip("RATING_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    with fresh_postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def database_path(tmp_path: Path, engine: str) -> Path:
    """The SQLite file, for tests that open it behind the service's back."""
    if engine != "sqlite":
        pytest.skip("this test reads the SQLite file directly")
    return tmp_path / "rating.db"


@pytest.fixture
def database_url(tmp_path: Path, engine: str) -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}"
        return
    with fresh_postgres_database(POSTGRES_URL) as url:
        yield url


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


ROOT = Path(__file__).resolve().parents[1]
"""The repository."""
NODE_PACKAGE = ROOT / "clients" / "node"
"""The TypeScript client package."""
BUILD_TIMEOUT = 180.0
"""Seconds `tsc` gets to build the Node package."""


@pytest.fixture(scope="session")
def node() -> Path:
    """The `node` executable; the test is skipped when Node or the client's packages are missing."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not on PATH: the TypeScript client cannot run (install Node.js 20+)")
    if not (NODE_PACKAGE / "node_modules").is_dir():
        pytest.skip("clients/node/node_modules is missing: run `npm ci` in clients/node")
    return Path(found)


@pytest.fixture(scope="session")
def node_examples(node: Path) -> Path:
    """clients/node compiled by its own `tsc` (as `npm run build` does); dist/examples."""
    tsc = NODE_PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"
    built = subprocess.run(
        [str(node), str(tsc), "-p", str(NODE_PACKAGE / "tsconfig.json")],
        cwd=NODE_PACKAGE,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, f"tsc failed:\n{built.stdout}{built.stderr}"
    return NODE_PACKAGE / "dist" / "examples"
