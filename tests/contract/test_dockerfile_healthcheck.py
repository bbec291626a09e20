"""The image's HEALTHCHECK keeps working when the server requires tokens and mutual TLS.

The check is run as the Dockerfile states it, with the environment of a server
started as an operator would secure it (tokens file, TLS with client
certificates): it asks the plaintext health listener (RATING_HEALTH_LISTEN).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_support import write_tokens
from certificates import Pki
from service_process import Launcher, free_port
from test_dockerfile_matches_readme import ROOT, dockerfile_instructions, exec_form, final_stage

CHECK_TIMEOUT = 20.0
"""Seconds the server gets to pass its health check after it starts."""


def healthcheck_argv() -> list[str]:
    """The final stage's HEALTHCHECK command (exec form), its `python` this test's."""
    stage = final_stage(dockerfile_instructions((ROOT / "Dockerfile").read_text()))
    checks = [arguments for keyword, arguments in stage if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    argv = exec_form(checks[0].split("CMD", 1)[1].strip())
    assert argv[0] == "python", argv
    return [sys.executable, *argv[1:]]


def run_check(env: dict[str, str]) -> int:
    return subprocess.run(
        healthcheck_argv(), env=env, capture_output=True, timeout=30, check=False
    ).returncode


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path / "servers")
    (tmp_path / "servers").mkdir()
    try:
        yield launcher
    finally:
        launcher.stop_all()


def test_the_healthcheck_passes_against_a_server_with_tokens_and_mutual_tls(
    launch: Launcher, tmp_path: Path
) -> None:
    """The probe needs no token and no client certificate: it answers 0 once serving, and
    not 0 once the server is gone."""
    pki = Pki.create(tmp_path / "pki")
    tokens = write_tokens(tmp_path / "tokens", {"operator": "admin"})
    server = launch(
        env={
            "RATING_AUTH_TOKENS_FILE": str(tokens.path),
            "RATING_TLS_CERT": str(pki.server.cert_path),
            "RATING_TLS_KEY": str(pki.server.key_path),
            "RATING_TLS_CLIENT_CA": str(pki.ca.cert_path),
            "RATING_HEALTH_LISTEN": f"127.0.0.1:{free_port()}",
        },
        start=False,
    )
    server.spawn()
    deadline = time.monotonic() + CHECK_TIMEOUT
    while run_check(server.env) != 0:
        assert server.process is not None
        assert server.process.poll() is None, server.output()
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)

    assert server.terminate() == 0
    assert run_check(server.env) != 0
