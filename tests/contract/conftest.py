"""Fixtures of the contract suite: the real server process, and the Node client built.

The server helpers are the end-to-end suite's (tests/e2e/service_process.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The end-to-end suite's helpers are plain modules beside its tests (no package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from service_process import Launcher, ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
"""The repository."""
NODE_PACKAGE = ROOT / "clients" / "node"
"""The TypeScript client package."""
BUILD_TIMEOUT = 180.0
"""Seconds `tsc` gets to build the Node package."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A running server on a fresh database file, stopped at teardown."""
    launcher = Launcher(tmp_path)
    yield launcher()
    launcher.stop_all()


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
