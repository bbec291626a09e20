"""The chain itself, read back: entries with their postings, and the balances they moved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select

from rating_service.domain.results import Entry
from rating_service.ledger.history import load_entries
from rating_service.ledger.schema import balances

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

_BALANCES = select(balances.c.account, balances.c.asset, balances.c.amount).where(
    balances.c.customer_id == bindparam("customer_id"),
    balances.c.account.in_(bindparam("accounts", expanding=True)),
)


class History:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def entries(self, customer_id: str, *, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries with ``sequence > after``, in sequence order."""
        return load_entries(self._unit.db().conn, customer_id, after=after, limit=limit)

    def entries_at(self, customer_id: str, sequences: list[int]) -> list[Entry]:
        """The entries at these sequences, in sequence order."""
        found: list[Entry] = []
        for sequence in sorted(set(sequences)):
            found += load_entries(self._unit.db().conn, customer_id, after=sequence - 1, limit=1)
        return found

    def balances(self, customer_id: str, accounts: list[str]) -> dict[tuple[str, str], int]:
        """(account, asset) -> amount, for those of ``accounts`` that have a balance."""
        rows = self._unit.db().all(_BALANCES, {"customer_id": customer_id, "accounts": accounts})
        return {(r["account"], r["asset"]): r["amount"] for r in rows}
