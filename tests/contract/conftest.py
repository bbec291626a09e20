"""Fixtures of the contract suite: the real server process (the Node client built is in
tests/conftest.py, for the soak test too).

The server helpers are the end-to-end suite's (tests/e2e/service_process.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The end-to-end suite's helpers are plain modules beside its tests (no package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from service_process import Launcher, ServiceProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A running server on a fresh database file, stopped at teardown."""
    launcher = Launcher(tmp_path)
    yield launcher()
    launcher.stop_all()
