"""Running prebuilt Core statements at the driver's own speed.

SQLAlchemy's execution path costs several times what SQLite takes to run a
small statement, and the hot paths run about ten statements per call. So the
statements stay defined once, as Core, and on SQLite they are compiled once
to SQL text and run straight on the ``sqlite3`` connection underneath (the
driver caches the prepared statement); on PostgreSQL they go through
SQLAlchemy as usual. Both ways share the connection and its transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement


class RowLike(Protocol):
    """A result row read by column name: ``sqlite3.Row`` or SQLAlchemy's ``RowMapping``."""

    def __getitem__(self, key: str) -> Any: ...


Params = Mapping[str, Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str | None
    """None: the statement needs SQLAlchemy at run time (an expanding ``IN``)."""
    values: itemgetter[Any] | None
    """Picks the positional values out of a parameter mapping (None: no parameters)."""
    literals: Mapping[str, Any]
    """Values the statement carries itself (``literal(...)``), merged under the caller's."""
    names: tuple[str, ...] = ()
    """The parameters' names, in the order the SQL takes them."""

    def positional(self, params: Params) -> tuple[Any, ...]:
        if self.values is None:
            return ()
        merged = {**self.literals, **params} if self.literals else params
        picked = self.values(merged)
        return picked if isinstance(picked, tuple) else (picked,)


_compiled: dict[tuple[int, tuple[str, ...]], tuple[Executable, _Compiled]] = {}


def _compile(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    """Compiled once per statement (and, for inserts, per set of columns); kept for the process,
    so statements given to the executor are built once, at import, never per call."""
    if not isinstance(statement, Insert):
        keys = ()  # only an insert takes its columns from the rows
    cache_key = (id(statement), keys)
    found = _compiled.get(cache_key)
    if found is not None:
        return found[1]
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
    assert isinstance(compiled, SQLCompiler)
    if "__[POSTCOMPILE_" in compiled.string:
        result = _Compiled(None, None, {})
        _compiled[cache_key] = (statement, result)
        return result
    names = tuple(compiled.positiontup or ())
    literals = {
        name: bind.value
        for name, bind in compiled.binds.items()
        if name in names and bind.value is not None and not bind.required
    }
    result = _Compiled(compiled.string, itemgetter(*names) if names else None, literals, names)
    # The statement is kept with its compiled form, so its id is never reused by another.
    _compiled[cache_key] = (statement, result)
    return result


class Executor:
    """Runs Core statements on ``conn``: on SQLite through the raw ``sqlite3`` connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        self._raw: sqlite3.Connection | None = raw if isinstance(raw, sqlite3.Connection) else None

    def all(self, statement: Executable, params: Params) -> Sequence[RowLike]:
        compiled = None if self._raw is None else _compile(statement, self.conn.dialect, ())
        if compiled is None or compiled.sql is None or self._raw is None:
            return self.conn.execute(statement, dict(params)).mappings().all()
        cursor = self._raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(compiled.sql, compiled.positional(params)).fetchall()

    def first(self, statement: Executable, params: Params) -> RowLike | None:
        rows = self.all(statement, params)
        return rows[0] if rows else None

    def many(self, statement: Executable, rows: Sequence[Params]) -> None:
        """One statement for each of ``rows`` (all with the same keys), in one driver call."""
        if not rows:
            return
        compiled = (
            None if self._raw is None else _compile(statement, self.conn.dialect, tuple(rows[0]))
        )
        if compiled is None or compiled.sql is None or self._raw is None:
            self.conn.execute(statement, [dict(r) for r in rows])
            return
        self._raw.executemany(compiled.sql, [compiled.positional(r) for r in rows])

    def many_values(
        self, statement: Executable, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """As ``many`` for an insert, each row a tuple of ``columns``: no dict per row,
        and on SQLite, when the SQL takes the columns in that order, the driver gets the
        tuples as they are."""
        if not rows:
            return
        compiled = None if self._raw is None else _compile(statement, self.conn.dialect, columns)
        if compiled is None or compiled.sql is None or self._raw is None or compiled.literals:
            self.conn.execute(statement, [dict(zip(columns, r, strict=True)) for r in rows])
            return
        if compiled.names != columns:
            pick = itemgetter(*(columns.index(name) for name in compiled.names))
            rows = [pick(r) for r in rows]
        self._raw.executemany(compiled.sql, rows)
