"""What every unit of work offers its repositories: the connection, the staging, the caches."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from rating_service.domain.buckets import Bucket
from rating_service.domain.ratecard import RateCardVersion
from rating_service.ledger.executor import Executor
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.staging import Staged


@dataclass
class Caches:
    """What a write session read once and keeps for the rest of its batch."""

    heads: dict[str, CustomerHead] = field(default_factory=dict)
    versions: dict[str, tuple[list[int], list[RateCardVersion]]] = field(default_factory=dict)
    buckets: dict[tuple[str, str], tuple[int, list[Bucket]]] = field(default_factory=dict)


class Unit:
    """What repositories need of a unit of work."""

    staged: Staged | None = None
    """The write session's staging (None on a read snapshot)."""
    caches: Caches | None = None

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.sql = Executor(conn)
        """For statements whose tables staging never touches, or that consult it themselves."""
        self.dialect = conn.dialect.name

    def db(self) -> Executor:
        """For any other read: the database with everything staged written out."""
        return self.sql

    def db_write(self) -> Executor:
        """For a statement that changes the database itself (not through staging)."""
        return self.sql
