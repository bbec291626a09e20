"""page token key: one random key that every replica sharing the database signs page tokens with

ListLedgerEntries' page tokens carry an HMAC-SHA256 (api/page_tokens.py). The
key is drawn here, once per database, so every server on the database agrees
on it and tokens stay valid across restarts; it never leaves the database but
through ``ledger.repositories.page_token_key``.

Revision ID: 0004
Revises: 0003
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "page_token_key",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("id = 1", name="page_token_key_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "secret": secrets.token_bytes(32)}])


def downgrade() -> None:
    op.drop_table("page_token_key")
