"""The SQLite ledger's first server proves it is the only one: an exclusive lock beside the file.

The server holding ``<database>.writer-lock`` keeps its writer's working set
in memory (see ``unit.WorkingSet``). A second server on the same file does not
get the lock: it serves without a working set, reading under each batch as
PostgreSQL replicas do, and says so; SQLite's write lock still takes the two
writers in turn, and the first notices the second's commits (``data_version``)
and drops what it held. The operating system releases the lock when its
process ends, however it ends, so a crashed server never leaves a stale
claim. PostgreSQL ledgers are shared by replicas and claim nothing.
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
            f"(pid {holder}, holding {path})"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return Claim(path, fd)
