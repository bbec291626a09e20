"""exact amounts: the database refuses a non-integer amount

SQLite turns an integer sum that overflows 64 bits into a REAL without an
error (``amount = amount + :delta``); these triggers make it refuse instead,
so an overflowing balance can never be stored. PostgreSQL's BIGINT already
raises ``numeric_value_out_of_range`` (22003), so it needs nothing.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXACT_COLUMNS = {
    "balances": ("amount",),
    "ledger_postings": ("amount",),
    "ledger_entries": ("units", "amount_nanos"),
    "outcomes": ("unit_price_nanos", "charged_nanos", "end_refunded_nanos"),
    "buckets": ("quantity", "unit_price_nanos"),
}
"""Every column that holds a count or an amount of nanos."""

REFUSAL = "AMOUNT_OUT_OF_RANGE"
"""What the triggers say; the writer recognises it (``ledger.ranges``)."""


def _not_exact(columns: Sequence[str]) -> str:
    return " OR ".join(f"(NEW.{c} IS NOT NULL AND typeof(NEW.{c}) != 'integer')" for c in columns)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in EXACT_COLUMNS.items():
        for action in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {table}_exact_{action.lower()} BEFORE {action} ON {table} "
                f"WHEN {_not_exact(columns)} "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: {table} holds exact integers only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in EXACT_COLUMNS:
        for action in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_exact_{action}")
