"""One server per SQLite ledger: an exclusive lock on a file beside the database.

SQLite has no replicas: one process writes it, and that writer keeps its
working set in memory (see ``unit.WorkingSet``). ``serve`` claims the ledger
before opening it; a second ``serve`` on the same file is refused with a
message naming the holder, instead of two servers taking turns at the write
lock. The operating system releases the lock when the process ends, however
it ends, so a crashed server never leaves a stale claim. PostgreSQL ledgers
are shared by replicas and claim nothing.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass

from sqlalchemy.engine import make_url

LOCK_SUFFIX = ".writer-lock"


class LedgerInUse(Exception):
    """Another process serves this SQLite ledger."""


@dataclass
class Claim:
    """The held lock; ``release`` gives it back (closing the process does too)."""

    path: str
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases its flock
            self.fd = None


def claim_ledger(database_url: str) -> Claim | None:
    """Claim the SQLite file of ``database_url`` for this process (None: nothing to claim)."""
    url = make_url(database_url)
    database = url.database
    if not url.get_backend_name().startswith("sqlite") or not database or database == ":memory:":
        return None
    path = os.path.abspath(database) + LOCK_SUFFIX
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LedgerInUse(
            f"the ledger {os.path.abspath(database)} is already served by another process "
            f"(pid {holder}, holding {path}); a SQLite ledger has one server: stop that one "
            "first, or use PostgreSQL to run several"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return Claim(path, fd)
