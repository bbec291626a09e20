"""Auth in a real ``rating-service serve`` process: SIGHUP re-reads the tokens file, and the
server refuses to start where it would serve the network without tokens."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from auth_support import bearer, write_tokens
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import Launcher, ServiceProcess, free_port

from rating_service.api.auth import token_digest

RELOAD_TIMEOUT = 20.0
"""Seconds the server gets to act on a SIGHUP before the test fails."""


def balance_code(server: ServiceProcess, token: str) -> grpc.StatusCode:
    """The code of a GetBalance of an unknown customer: NOT_FOUND once the token is admitted."""
    with grpc.insecure_channel(server.address) as channel:
        try:
            rating_pb2_grpc.RatingServiceStub(channel).GetBalance(
                pb.GetBalanceRequest(customer_id="nobody"), metadata=bearer(token), timeout=5
            )
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
    return grpc.StatusCode.OK


def until_code(server: ServiceProcess, token: str, expected: grpc.StatusCode) -> None:
    """Wait until a call with ``token`` answers ``expected`` (the signal is asynchronous)."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while balance_code(server, token) != expected:
        assert time.monotonic() < deadline, f"still not {expected}:\n{server.output()}"
        time.sleep(0.05)


def test_sighup_rereads_the_tokens_file_and_keeps_it_when_the_new_one_is_bad(
    launch: Launcher, tmp_path: Path
) -> None:
    """A token added to the file works after SIGHUP and a removed one stops working; a file
    with a bad line is not taken: the callers in force stay, and the log names the line."""
    first = write_tokens(tmp_path / "tokens", {"reader": "read"})
    server = launch(env={"RATING_AUTH_TOKENS_FILE": str(first.path)})
    assert balance_code(server, first["reader"]) == grpc.StatusCode.NOT_FOUND

    second = write_tokens(tmp_path / "tokens", {"auditor": "read"})
    server.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    until_code(server, second["auditor"], grpc.StatusCode.NOT_FOUND)
    assert balance_code(server, first["reader"]) == grpc.StatusCode.UNAUTHENTICATED

    (tmp_path / "tokens").write_text(f"auditor {token_digest('x')} read\nbroken line\n")
    server.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while "line 2" not in server.output():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    assert balance_code(server, second["auditor"]) == grpc.StatusCode.NOT_FOUND
    assert balance_code(server, "x") == grpc.StatusCode.UNAUTHENTICATED
    assert "tokens file not reloaded" in server.output()
    for token in (*first.by_caller.values(), *second.by_caller.values()):
        assert token not in server.output()
    assert server.terminate() == 0


def test_without_tokens_on_every_interface_serve_exits_2_saying_what_to_set(
    launch: Launcher,
) -> None:
    """RATING_LISTEN=0.0.0.0 without RATING_AUTH_TOKENS_FILE or RATING_AUTH=off: exit 2."""
    server = launch(address=f"0.0.0.0:{free_port()}", start=False)
    server.spawn()

    assert server.wait() == 2
    assert "RATING_AUTH_TOKENS_FILE" in server.output()
    assert "RATING_AUTH=off" in server.output()


def test_a_bad_tokens_file_makes_serve_exit_2_naming_the_line(
    launch: Launcher, tmp_path: Path
) -> None:
    """The server does not start on a tokens file with a line it cannot read."""
    path = tmp_path / "tokens"
    path.write_text("# callers\nreader not-a-digest read\n")
    server = launch(env={"RATING_AUTH_TOKENS_FILE": str(path)}, start=False)
    server.spawn()

    assert server.wait() == 2
    assert f"{path}, line 2" in server.output()


def test_with_rating_auth_off_the_server_serves_every_interface(launch: Launcher) -> None:
    """The explicit opt-out starts the server on 0.0.0.0 (health answers on loopback)."""
    port = free_port()
    server = launch(address=f"0.0.0.0:{port}", env={"RATING_AUTH": "off"}, start=False)
    server.spawn()
    server.address = f"127.0.0.1:{port}"
    server.wait_until_serving()

    assert balance_code(server, "anything") == grpc.StatusCode.NOT_FOUND
    assert server.terminate() == 0


def test_the_token_command_prints_a_token_and_the_line_that_admits_it(
    launch: Launcher, tmp_path: Path
) -> None:
    """`rating-service token NAME SCOPES`: appended to the tokens file, its line admits its
    token; a bad scope is refused with exit 2."""
    made = subprocess.run(
        [sys.executable, "-m", "rating_service", "token", "auditor", "read"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    token = made[0].removeprefix("token: ")
    (tmp_path / "tokens").write_text(made[1].removeprefix("line:  ") + "\n")
    server = launch(env={"RATING_AUTH_TOKENS_FILE": str(tmp_path / "tokens")})

    assert balance_code(server, token) == grpc.StatusCode.NOT_FOUND
    assert token not in (tmp_path / "tokens").read_text()
    refused = subprocess.run(
        [sys.executable, "-m", "rating_service", "token", "auditor", "write"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "unknown scope 'write'" in refused.stderr
