"""The range the ledger stores amounts in, and how the database says a write left it.

Every count and amount is a signed 64-bit integer (nanos for money) on both
engines. A single posting is checked before it is staged; a balance that a
sum would push past the range is refused by the database itself (SQLite by
the triggers of migration 0003, PostgreSQL by BIGINT's own overflow error),
and the writer turns that refusal into AMOUNT_OUT_OF_RANGE for the one call
that caused it.
"""

from __future__ import annotations

import sqlite3

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_SQLITE_REFUSAL = "AMOUNT_OUT_OF_RANGE"
_POSTGRES_OUT_OF_RANGE = "22003"
"""numeric_value_out_of_range"""


def left_range(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is the database refusing an amount."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OverflowError):  # sqlite3 binding a Python int past 64 bits
            return True
        if isinstance(seen, sqlite3.IntegrityError) and _SQLITE_REFUSAL in str(seen):
            return True
        if getattr(seen, "sqlstate", None) == _POSTGRES_OUT_OF_RANGE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
