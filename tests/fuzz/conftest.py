"""One real server for the whole fuzz suite, seeded; the tally printed at the end.

The server runs in this process on an event loop of its own thread (hypothesis
drives only synchronous tests), over a real SQLite file, with its clock standing
still at ``fuzz_requests.NOW`` and its sweeps asleep, so nothing writes to the
ledger but the calls themselves: SQLite's ``data_version`` then tells exactly
whether a call wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fuzz_checks import TALLY, Caller, Ledger, seed
from fuzz_requests import NOW
from rating_client.v1 import rating_pb2_grpc
from serving import serving_in_thread

from rating_service.config import Settings


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.counts:
        terminalreporter.section("fuzz: requests per RPC and their answers")
        for line in TALLY.lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fuzz_caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    path = tmp_path_factory.mktemp("fuzz") / "rating.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}", listen="127.0.0.1:0", sweep_interval=1e6
    )
    with (
        serving_in_thread(settings, clock=lambda: NOW) as port,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        contextlib.closing(Ledger(path)) as ledger,
    ):
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        tokens = seed(stub)
        yield Caller(channel, stub, ledger, path, tokens)
