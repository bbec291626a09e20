"""The key ListLedgerEntries' page tokens are signed with: one row, drawn by migration 0004."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from rating_service.ledger.schema import page_token_key

_KEY = select(page_token_key.c.secret).where(page_token_key.c.id == 1)


class NoPageTokenKey(RuntimeError):
    """The database has no page token key: its schema predates migration 0004."""


def read_page_token_key(conn: Connection) -> bytes:
    """The 32-byte key every server sharing this database signs page tokens with."""
    secret = conn.execute(_KEY).scalar_one_or_none()
    if secret is None:
        raise NoPageTokenKey("the ledger has no page token key; run `rating-service migrate`")
    return bytes(secret)
