"""One holder at a time among the processes that share a ledger.

Every replica runs the Stripe reporter; only one should talk to Stripe at a
time (the others would send the same meter events, which Stripe drops as
duplicates, at twice the calls and the rate limit). A lease here dies with
its holder: a PostgreSQL session-level advisory lock ends with the session,
an ``flock`` ends with the process. A leader killed with SIGKILL therefore
never blocks the next one, and no expiry clock has to be tuned.
"""

from __future__ import annotations

import fcntl
import logging
import os
import zlib
from typing import Protocol

from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class Lease(Protocol):
    async def try_acquire(self) -> bool:
        """True while this process holds the lease (taking it if it is free)."""
        ...

    async def release(self) -> None: ...


def lease_for(engine: AsyncEngine, name: str) -> Lease:
    """The lease called ``name`` on the ledger ``engine`` reaches."""
    url = make_url(str(engine.url))
    if url.get_backend_name() == "postgresql":
        return _AdvisoryLock(engine, zlib.crc32(name.encode()))
    database = url.database or ""
    if database in ("", ":memory:"):
        return _InProcess()  # no other process can reach this ledger
    return _LockFile(f"{database}.{name}.lock")


class _InProcess:
    async def try_acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class _LockFile:
    """``flock`` on a file beside the SQLite database."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None


_PING = text("SELECT 1")
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)").bindparams(bindparam("key"))
_UNLOCK = text("SELECT pg_advisory_unlock(:key)").bindparams(bindparam("key"))


class _AdvisoryLock:
    """A session-level advisory lock, held on a connection of its own."""

    def __init__(self, engine: AsyncEngine, key: int) -> None:
        self._engine = engine
        self._key = key
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            try:  # a lost session lost the lock with it: take it again
                await self._conn.execute(_PING)
                await self._conn.commit()
                return True
            except Exception as error:
                log.warning("lost the connection holding a lease (%s); taking it again", error)
                await self._drop()
        conn = await self._engine.connect()
        try:
            held = bool((await conn.execute(_TRY_LOCK, {"key": self._key})).scalar_one())
            await conn.commit()  # end the transaction; the session keeps the lock
        except BaseException:
            await conn.close()
            raise
        if not held:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def release(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.execute(_UNLOCK, {"key": self._key})
            await self._conn.commit()
        except Exception as error:
            log.warning("could not release a lease cleanly (%s); closing its session", error)
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()  # never back to the pool still holding the lock
            finally:
                await conn.close()
