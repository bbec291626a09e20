"""The service as a real operating-system process: start, wait for health, stop, kill.

The end-to-end tests drive ``python -m rating_service`` exactly as an operator
would: settings in environment variables, a SQLite file on disk, the standard
gRPC health service as the readiness probe, and signals to stop it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT = 20.0
"""Seconds a server gets to answer SERVING before the test fails."""
STOP_TIMEOUT = 20.0
"""Seconds a server gets to exit after SIGTERM before it is killed."""
COMMAND_TIMEOUT = 60.0
"""Seconds ``verify`` or ``migrate`` get to finish."""


def free_port() -> int:
    """A port nobody listens on right now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(database_path: Path, address: str, extra: dict[str, str]) -> dict[str, str]:
    """The test runner's environment without its own RATING_/STRIPE_ settings, plus ours."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RATING_", "STRIPE_"))
    }
    env["RATING_DATABASE_URL"] = f"sqlite+aiosqlite:///{database_path}"
    env["RATING_LISTEN"] = address
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def health_status(address: str, service: str = "", timeout: float = 1.0) -> int | None:
    """The health service's answer for ``service``, or None when the server does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
    status: int = reply.status
    return status


@dataclass
class ServiceProcess:
    """One server address and database file, and the process serving them (if any)."""

    workdir: Path
    database_path: Path
    address: str
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def env(self) -> dict[str, str]:
        return service_env(self.database_path, self.address, self.extra_env)

    @property
    def log_path(self) -> Path:
        """Where the current (or last) process writes its stdout and stderr."""
        return self.workdir / f"serve-{self.starts}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server was never started"
        return self.process.pid

    def output(self) -> str:
        """What the current (or last) process has written so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def spawn(self) -> None:
        """Start ``python -m rating_service serve`` without waiting for it."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rating_service", "serve"],
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and return once its health service answers SERVING."""
        self.spawn()
        self.wait_until_serving(timeout)

    def wait_until_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the health service; fail with the server's output if it dies or times out."""
        assert self.process is not None, "the server was never started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the server exited with {self.process.returncode} before serving:\n"
                    f"{self.output()}"
                )
            if health_status(self.address) == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.05)
        self.kill()
        raise AssertionError(
            f"the server did not answer SERVING on {self.address} within {timeout} s:\n"
            f"{self.output()}"
        )

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit on its own and return its exit code."""
        assert self.process is not None, "the server was never started"
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the server did not exit within {timeout} s:\n{self.output()}"
            ) from None

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit code."""
        assert self.process is not None, "the server was never started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: the process dies at once, whatever it was doing."""
        assert self.process is not None, "the server was never started"
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(STOP_TIMEOUT)

    def run(
        self, command: str, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m rating_service <command> <args>`` (verify, migrate, status) with the
        same settings."""
        return run_command(command, self.env, self.workdir, timeout, args=args)


class Launcher:
    """Creates server processes under one directory and stops those still running."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._launched: list[ServiceProcess] = []

    def __call__(
        self,
        *,
        database_path: Path | None = None,
        address: str | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> ServiceProcess:
        """A server on ``database_path`` (default: the root's rating.db) and ``address``
        (default: a free port), started and SERVING unless ``start`` is False."""
        workdir = self._root / f"server-{len(self._launched)}"
        workdir.mkdir()
        server = ServiceProcess(
            workdir=workdir,
            database_path=database_path or self._root / "rating.db",
            address=address or f"127.0.0.1:{free_port()}",
            extra_env=dict(env or {}),
        )
        self._launched.append(server)
        if start:
            server.start()
        return server

    def stop_all(self) -> None:
        """SIGTERM (then SIGKILL) every server still running."""
        for server in self._launched:
            if server.process is not None and server.process.poll() is None:
                server.terminate()


def run_command(
    command: str,
    env: dict[str, str],
    cwd: Path,
    timeout: float = COMMAND_TIMEOUT,
    *,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rating_service <command> <args>``; stdout and stderr merged into
    ``stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "rating_service", command, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
