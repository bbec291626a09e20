"""Servers as child processes for the benchmark: start, wait for health, sample memory, stop.

The benchmark measures servers the way an operator runs them, as separate
processes, so that the client's work and the server's are not counted
together and the server's memory is its own. Memory is read from
``/proc/<pid>/status`` (VmRSS, and VmHWM: the kernel's own high-water mark),
so no extra dependency is needed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    """A port nobody listens on right now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def read_memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a live process in KiB, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    if len(values) < 2:
        return None
    return values["VmRSS"], values["VmHWM"]


def read_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used, in seconds; 0.0 once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    fields = text.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a process's resident memory in a thread until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self.peak_rss_kib = 0
        self.high_water_kib = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def sample(self) -> None:
        memory = read_memory_kib(self._pid)
        if memory is None:
            return
        rss, hwm = memory
        self.samples += 1
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        self.high_water_kib = max(self.high_water_kib, hwm)

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        """The larger of the sampled peak and the kernel's high-water mark, in MiB."""
        return max(self.peak_rss_kib, self.high_water_kib) / 1024


@dataclass
class ServerProcess:
    """A server command run as a child process, with its output in a log file."""

    argv: list[str]
    address: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, timeout: float = START_TIMEOUT) -> None:  # noqa: ASYNC109
        """Start it and return once its health service answers SERVING."""
        self.spawn()
        deadline = time.monotonic() + timeout
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.argv} exited with {self.process.returncode}:\n{self.output()}"
                    )
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.argv} did not serve on {self.address}:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited in time; the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(STOP_TIMEOUT)
