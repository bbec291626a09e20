"""When the database itself fails, not a call: the disk is full, read-only or failing, or the
connection to the server is gone.

Such an error says nothing about the job that happened to meet it; its
neighbours would meet it too. The writer fails the whole batch with it, so
every caller hears UNAVAILABLE and may retry (each write is idempotent), and
the next batch is tried afresh: once the fault is gone, writes work again
without a restart.
"""

from __future__ import annotations

import sqlite3

_SQLITE_OUTAGES = frozenset(
    {
        sqlite3.SQLITE_BUSY,  # another process held the write lock past busy_timeout
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,  # the file can no longer be written
        sqlite3.SQLITE_IOERR,  # a read, write or fsync failed (EIO, EPERM, EROFS)
        sqlite3.SQLITE_FULL,  # ENOSPC
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)
"""Primary result codes (an extended code's low byte) that mean the database failed."""

_POSTGRES_OUTAGE_CLASSES = ("08", "53", "57P", "58")
"""SQLSTATE prefixes: connection exception; insufficient resources (53100 disk_full, 53200
out_of_memory, 53300 too_many_connections); the server shutting down or starting
(57P01-57P03); system error (58030 io_error)."""
_POSTGRES_READ_ONLY = "25006"
"""read_only_sql_transaction: the server is a standby now, or writes were switched off."""

MESSAGE_LIMIT = 200
"""Characters of the database's own message a caller is told."""


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is the database failing, not the call."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):  # the driver's own I/O: a socket, a file
            return True
        if getattr(seen, "connection_invalidated", False):  # SQLAlchemy saw a disconnect
            return True
        if isinstance(seen, sqlite3.Error) and seen.sqlite_errorcode & 0xFF in _SQLITE_OUTAGES:
            return True
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate.startswith(_POSTGRES_OUTAGE_CLASSES) or sqlstate == _POSTGRES_READ_ONLY
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe(error: BaseException) -> str:
    """What a caller is told: the database's own words, never SQLAlchemy's statement and
    parameters (they name the other customers of the same batch)."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    words = (lines[0] if lines else type(cause).__name__)[:MESSAGE_LIMIT]
    return f"the ledger could not commit ({words}); the call may be retried as it was"
