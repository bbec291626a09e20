"""Which database errors are the store failing (rating_service.ledger.outage), not the call.

The writer fails a whole batch with UNAVAILABLE on these instead of answering the one
job that met it with INTERNAL; the end-to-end fault suite (tests/e2e/test_faults_*.py)
shows it on a real disk and a real PostgreSQL.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc

from rating_service.domain.errors import CustomerNotFound
from rating_service.ledger.outage import MESSAGE_LIMIT, describe, is_outage


def sqlite_error(code: int, message: str) -> sqlite3.Error:
    """As the sqlite3 module raises it: the extended result code as an attribute."""
    kind = (
        sqlite3.IntegrityError
        if code & 0xFF == sqlite3.SQLITE_CONSTRAINT
        else sqlite3.OperationalError
    )
    error = kind(message)
    error.sqlite_errorcode = code
    return error


class PostgresError(Exception):
    """What asyncpg raises: the SQLSTATE as an attribute."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def wrapped(orig: BaseException) -> exc.DBAPIError:
    """As SQLAlchemy raises it: from the driver's error, with the statement and parameters."""
    error = exc.OperationalError("INSERT INTO outcomes VALUES (?)", ("other-customer",), orig)
    error.__cause__ = orig
    return error


SQLITE_OUTAGES = {
    sqlite3.SQLITE_FULL: "database or disk is full",
    sqlite3.SQLITE_IOERR_WRITE: "disk I/O error",
    sqlite3.SQLITE_IOERR_FSYNC: "disk I/O error",
    sqlite3.SQLITE_READONLY: "attempt to write a readonly database",
    sqlite3.SQLITE_BUSY: "database is locked",
    sqlite3.SQLITE_CANTOPEN: "unable to open database file",
}
SQLITE_REFUSALS = {
    sqlite3.SQLITE_CONSTRAINT_UNIQUE: "UNIQUE constraint failed",
    sqlite3.SQLITE_CONSTRAINT_TRIGGER: "AMOUNT_OUT_OF_RANGE",
    sqlite3.SQLITE_ERROR: "no such table: outcomes",
}
POSTGRES_OUTAGES = ("53100", "25006", "57P01", "08006", "58030")
"""disk_full, read_only_sql_transaction, admin_shutdown, connection_failure, io_error"""
POSTGRES_REFUSALS = ("23505", "22003", "40001", "57014")
"""unique_violation, numeric_value_out_of_range, serialization_failure (retried, not an
outage), query_canceled"""

OUTAGES = [
    *(sqlite_error(code, message) for code, message in SQLITE_OUTAGES.items()),
    *map(PostgresError, POSTGRES_OUTAGES),
    ConnectionResetError(104, "Connection reset by peer"),
    OSError(28, "No space left on device"),
]
NOT_OUTAGES = [
    *(sqlite_error(code, message) for code, message in SQLITE_REFUSALS.items()),
    *map(PostgresError, POSTGRES_REFUSALS),
    CustomerNotFound("customer 'x' does not exist", customer_id="x"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=repr)
def test_the_database_failing_is_an_outage(error: BaseException) -> None:
    assert is_outage(error)
    assert is_outage(wrapped(error))


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=repr)
def test_a_call_that_failed_on_its_own_is_not_an_outage(error: BaseException) -> None:
    assert not is_outage(error)
    assert not is_outage(wrapped(error))


def test_an_error_raised_while_handling_an_outage_is_one() -> None:
    """A rollback that fails after the disk did: the context says what happened first."""
    error = RuntimeError("rollback failed")
    error.__context__ = wrapped(PostgresError("53100"))

    assert is_outage(error)


def test_a_disconnect_seen_by_sqlalchemy_is_an_outage() -> None:
    error = exc.DBAPIError("SELECT 1", (), Exception("gone"), connection_invalidated=True)

    assert is_outage(error)


def test_the_caller_hears_the_database_words_without_the_statement_or_its_parameters() -> None:
    error = wrapped(sqlite_error(sqlite3.SQLITE_FULL, "database or disk is full"))

    message = describe(error)

    assert "database or disk is full" in message
    assert "INSERT" not in message
    assert "other-customer" not in message


def test_a_long_database_message_is_cut() -> None:
    message = describe(wrapped(PostgresError("53100" + "x" * 1000)))

    assert "x" * MESSAGE_LIMIT not in message
    assert len(message) < MESSAGE_LIMIT + 100
