"""Storage faults under a running server, and a load that keeps every answer it got.

A fault is applied and removed while ``rating-service serve`` keeps running:

- ``ImmutableFiles``: the database directory and files become unwritable. chmod cannot do
  that: permissions are checked when a file is opened, and the server's connections are
  open already (and root ignores them anyway); a read-only remount is refused (EBUSY)
  while a process holds a file open for writing. ext4's immutable flag (``chattr +i``) is
  checked on every write, for root too, so SQLite's next write fails exactly as on a
  filesystem gone read-only (SQLITE_IOERR_WRITE) and works again after ``chattr -i``.
  tmpfs does not check it on open files, so the database lives on a small ext4 image
  mounted on a loop device.
- ``FullDisk``: a filler file takes every free block of a small tmpfs (ENOSPC); deleting
  it frees them.
- ``ReadOnlyPostgres``: a failover to a server that only reads. Sessions opened from
  then on refuse every write (SQLSTATE 25006), and every open session is cut.

Mounting needs root (CI runs as root on a fresh Debian machine); without it, or where
the machine cannot mount, the tests that need it skip and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import pwd
import subprocess
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

import pytest
from rating_client import LedgerEntry, NewOutcome, OutcomeRecorded, RatingClient, RatingError
from support import fresh_postgres_database, psql, psycopg_free_url

OK = "OK"
STORE_UNAVAILABLE = "UNAVAILABLE STORE_UNAVAILABLE"
"""What a write must answer while the store cannot write: the code and ErrorInfo.reason."""
WAIT = 60.0
"""Seconds a phase of a scenario may take before the test gives up on it (a hang guard)."""
CALL_TIMEOUT = 15.0
PAUSE_AFTER_FAILURE = 0.01
"""Seconds a load lane waits after a failed call, so a fault does not become a busy loop."""


def label(error: RatingError) -> str:
    """How a failure is tallied: its code and reason, e.g. ``UNAVAILABLE STORE_UNAVAILABLE``."""
    return f"{error.code.name} {error.reason}".strip()


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (mount, chattr); CI runs as root")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        pytest.skip(f"{command[0]} is not installed")


def _must(*command: str) -> None:
    done = _run(*command)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")


@contextlib.contextmanager
def mounted(
    mount_point: Path, *, kind: Literal["ext4", "tmpfs"], size_mib: int, options: str = ""
) -> Iterator[Path]:
    """A fresh filesystem of ``size_mib`` MiB at ``mount_point``, unmounted afterwards:
    tmpfs, or ext4 in an image file on a loop device. Skips where mounting is impossible."""
    require_root(f"mounting {kind}")
    mount_point.mkdir(parents=True, exist_ok=True)
    if kind == "tmpfs":
        command = ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m{options}", "tmpfs"]
    else:
        image = mount_point.with_name(f"{mount_point.name}.img")
        with image.open("wb") as blank:
            blank.truncate(size_mib << 20)
        _must("mkfs.ext4", "-q", "-m", "0", str(image))  # -m 0: no blocks kept for root
        command = ["mount", "-o", f"loop{options}", str(image)]
    done = _run(*command, str(mount_point))
    if done.returncode != 0:
        pytest.skip(f"cannot mount {kind} on this machine: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if _run("umount", str(mount_point)).returncode != 0:
            _run("umount", "--lazy", str(mount_point))


class Fault(Protocol):
    def apply(self) -> None: ...

    def remove(self) -> None: ...


@dataclass
class ImmutableFiles:
    """``chattr +i`` on these paths: nobody, root included, writes them until ``remove``.

    Not SQLite's ``-shm`` file: SQLite writes it through a shared mapping, and a write
    through a mapping of an immutable file kills the process with SIGBUS.
    """

    paths: Sequence[Path]

    def apply(self) -> None:
        _must("chattr", "+i", *map(str, self.paths))

    def remove(self) -> None:
        _must("chattr", "-i", *map(str, self.paths))


@dataclass
class FullDisk:
    """A filler file that takes every free block of the filesystem holding ``directory``."""

    directory: Path

    @property
    def filler(self) -> Path:
        return self.directory / "filler"

    def apply(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for size in (1 << 20, 4096):  # then the last pages one by one
                while _wrote(fd, size):
                    pass
        finally:
            os.close(fd)

    def remove(self) -> None:
        self.filler.unlink()


def _wrote(fd: int, size: int) -> bool:
    """Whether ``size`` more bytes fit (False: ENOSPC)."""
    try:
        os.write(fd, bytes(size))
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return False
    return True


@dataclass
class ReadOnlyPostgres:
    """The database fails over to a server that only reads, and back."""

    admin_url: str
    database: str

    def apply(self) -> None:
        psql(
            self.admin_url, f"ALTER DATABASE {self.database} SET default_transaction_read_only = on"
        )
        self._cut_sessions()

    def remove(self) -> None:
        psql(self.admin_url, f"ALTER DATABASE {self.database} RESET default_transaction_read_only")
        self._cut_sessions()

    def _cut_sessions(self) -> None:
        psql(
            self.admin_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.database}' AND pid <> pg_backend_pid()",
        )


@contextlib.contextmanager
def postgres_on_small_disk(server_url: str, size_mib: int) -> Iterator[tuple[str, Path]]:
    """A fresh database whose tables all live on a tmpfs of ``size_mib`` MiB (a tablespace),
    and that tmpfs' mount point. The server must run on this machine, as user postgres."""
    host = urlsplit(psycopg_free_url(server_url)).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"PostgreSQL runs on {host}: its disk cannot be filled from here")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user on this machine: PostgreSQL does not run here")
    parent = Path(tempfile.mkdtemp(prefix="rating-faults-"))
    parent.chmod(0o755)  # the server, user postgres, must reach the mount point
    space = f"rating_faults_{parent.name.rsplit('-', 1)[-1].lower()}"
    admin = psycopg_free_url(server_url)
    try:
        with mounted(
            parent / "tablespace",
            kind="tmpfs",
            size_mib=size_mib,
            options=f",mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}",
        ) as mount_point:
            created = _run(
                "psql", admin, "-qc", f"CREATE TABLESPACE {space} LOCATION '{mount_point}'"
            )
            if created.returncode != 0:
                pytest.skip(f"cannot create a tablespace on a tmpfs: {created.stderr.strip()}")
            try:
                with fresh_postgres_database(server_url, f"TABLESPACE {space}") as url:
                    yield url, mount_point
            finally:
                psql(admin, f"DROP TABLESPACE IF EXISTS {space}")
    finally:
        with contextlib.suppress(FileNotFoundError):  # never made when mounting was skipped
            parent.joinpath("tablespace").rmdir()
        parent.rmdir()


Outcome = OutcomeRecorded | RatingError


@dataclass
class Load:
    """Lanes recording new outcomes of one customer, one at a time or eight per
    RecordOutcomes call, without retries; every answer is tallied under the current phase."""

    client: RatingClient
    customer_id: str
    outcome_type: str
    phase: str = "before"
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(phase, label) -> how many answers."""
    messages: set[str] = field(default_factory=set)
    """Every failure's status message."""
    acknowledged: dict[str, OutcomeRecorded] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _stopping: bool = False
    _going: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: int = 0

    def count(self, phase: str, answer: str) -> int:
        return self.answers[(phase, answer)]

    def total(self, phase: str) -> int:
        return sum(n for (p, _), n in self.answers.items() if p == phase)

    def labels(self) -> set[str]:
        return {answer for _, answer in self.answers}

    async def run(self, lanes: int = 4) -> None:
        self._going.set()
        await asyncio.gather(*(self._lane() for _ in range(lanes)))

    def stop(self) -> None:
        self._stopping = True
        self._going.set()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No call of the load in flight meanwhile: a call made here has a batch to itself."""
        self._going.clear()
        await self.until(lambda: self._in_flight == 0, "the load's calls answered")
        try:
            yield
        finally:
            self._going.set()

    async def until(self, done: Callable[[], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not done():
            if loop.time() > deadline:
                raise AssertionError(f"{what}: not within {WAIT} s; answers: {self.answers}")
            await asyncio.sleep(0.01)

    async def _lane(self) -> None:
        for turn in itertools.count():
            await self._going.wait()
            if self._stopping:
                return
            ids = [f"load-{next(self._ids)}" for _ in range(8 if turn % 4 == 3 else 1)]
            self.sent += ids
            results: Sequence[Outcome]
            self._in_flight += 1
            try:
                if len(ids) == 1:
                    results = [
                        await self.client.record_outcome(
                            customer_id=self.customer_id,
                            outcome_id=ids[0],
                            outcome_type=self.outcome_type,
                        )
                    ]
                else:
                    results = await self.client.record_outcomes(
                        outcomes=[self._outcome(i) for i in ids]
                    )
            except RatingError as error:
                results = [error] * len(ids)
            finally:
                self._in_flight -= 1
            for outcome_id, result in zip(ids, results, strict=True):
                self._tally(outcome_id, result)
            if any(isinstance(r, RatingError) for r in results):
                await asyncio.sleep(PAUSE_AFTER_FAILURE)

    def _outcome(self, outcome_id: str) -> NewOutcome:
        return NewOutcome(
            customer_id=self.customer_id, outcome_id=outcome_id, outcome_type=self.outcome_type
        )

    def _tally(self, outcome_id: str, result: Outcome) -> None:
        if isinstance(result, RatingError):
            self.answers[(self.phase, label(result))] += 1
            self.messages.add(result.message)
        else:
            self.answers[(self.phase, OK)] += 1
            self.acknowledged[outcome_id] = result

    async def record_again(self, client: RatingClient) -> dict[str, OutcomeRecorded]:
        """Every outcome sent, sent again (``client`` retries), 500 per call."""
        answers: dict[str, OutcomeRecorded] = {}
        for start in range(0, len(self.sent), 500):
            chunk = self.sent[start : start + 500]
            results = await client.record_outcomes(outcomes=[self._outcome(i) for i in chunk])
            for outcome_id, result in zip(chunk, results, strict=True):
                assert isinstance(result, OutcomeRecorded), f"{outcome_id}: {result}"
                answers[outcome_id] = result
        return answers


async def answer_of(call: Awaitable[object]) -> str:
    """``OK`` or the failure's label."""
    try:
        await call
    except RatingError as error:
        return label(error)
    return OK


async def ledger(client: RatingClient, customer_id: str) -> list[LedgerEntry]:
    return [e async for e in client.iter_ledger_entries(customer_id=customer_id, page_size=1000)]


def kinds_and_keys(entries: Sequence[LedgerEntry]) -> Counter[tuple[str, str]]:
    """(kind, the outcome, request or bucket id it names) -> how many entries."""
    return Counter((e.kind, e.outcome_id or e.request_id or e.bucket_id or "") for e in entries)


PRICES = {"resolution": Decimal("0.99"), "escalation": Decimal("2.50")}
