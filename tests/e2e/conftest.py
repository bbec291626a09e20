"""Fixtures of the end-to-end suite: the service as a separate process on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_process import Launcher, ServiceProcess


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """A factory of server processes; every one still running at teardown is stopped.

    ``launch()`` starts a server on a fresh database and a free port and returns
    once it answers SERVING; ``launch(database_path=..., address=..., env=...,
    start=False)`` varies that. ``server.run("verify")`` runs a command with
    the same settings.
    """
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture
def server(launch: Launcher) -> ServiceProcess:
    """A running server on a fresh database file."""
    return launch()
