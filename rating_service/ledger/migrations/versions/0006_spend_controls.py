"""spend controls and voided buckets

Customers gain their spend controls (alert thresholds and a hard limit, read
with the chain head so the write path costs no extra query); PutSpendControls'
request ids are kept with what they set; alerts get their table and a one-row
counter whose lock keeps their ids gap-free; buckets gain what VoidBucket
records. New amount columns get 0003's SQLite triggers: exact integers only.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXACT_COLUMNS = {
    "customers": ("spend_hard_limit",),
    "buckets": ("void_units",),
    "spend_alerts": ("threshold_nanos", "period_charged_nanos"),
}
"""The new columns that hold a count or an amount of nanos (as in 0003)."""

REFUSAL = "AMOUNT_OUT_OF_RANGE"


def _not_exact(columns: Sequence[str]) -> str:
    return " OR ".join(f"(NEW.{c} IS NOT NULL AND typeof(NEW.{c}) != 'integer')" for c in columns)


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a SQLite table rebuild would lose 0003's triggers.
    op.add_column("customers", sa.Column("spend_currency", sa.String(length=3), nullable=True))
    op.add_column("customers", sa.Column("spend_thresholds", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("spend_hard_limit", sa.BigInteger(), nullable=True))
    op.add_column("customers", sa.Column("spend_updated_at", sa.BigInteger(), nullable=True))
    op.add_column("buckets", sa.Column("voided_at", sa.BigInteger(), nullable=True))
    op.add_column("buckets", sa.Column("void_sequence", sa.BigInteger(), nullable=True))
    op.add_column("buckets", sa.Column("void_units", sa.BigInteger(), nullable=True))
    op.add_column("buckets", sa.Column("void_fingerprint", sa.String(length=64), nullable=True))
    op.create_table(
        "spend_control_requests",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "request_id"),
    )
    op.create_table(
        "spend_alerts",
        sa.Column("alert_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("threshold_nanos", sa.BigInteger(), nullable=False),
        sa.Column("period_charged_nanos", sa.BigInteger(), nullable=False),
        sa.Column("crossed_at", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
        sa.UniqueConstraint(
            "customer_id", "period", "currency", "threshold_nanos", name="uq_spend_alerts_once"
        ),
    )
    op.create_index("ix_spend_alerts_customer", "spend_alerts", ["customer_id", "alert_id"])
    counter = op.create_table(
        "spend_alert_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_alert_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="spend_alert_counter_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(counter, [{"id": 1, "last_alert_id": 0}])
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in EXACT_COLUMNS.items():
        for action in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {table}_spend_exact_{action.lower()} BEFORE {action} ON {table} "
                f"WHEN {_not_exact(columns)} "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: {table} holds exact integers only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in EXACT_COLUMNS:
            for action in ("insert", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_spend_exact_{action}")
    op.drop_table("spend_alert_counter")
    op.drop_index("ix_spend_alerts_customer", table_name="spend_alerts")
    op.drop_table("spend_alerts")
    op.drop_table("spend_control_requests")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too), so no table is rebuilt.
    for column in ("void_fingerprint", "void_units", "void_sequence", "voided_at"):
        op.execute(f"ALTER TABLE buckets DROP COLUMN {column}")
    for column in ("spend_updated_at", "spend_hard_limit", "spend_thresholds", "spend_currency"):
        op.execute(f"ALTER TABLE customers DROP COLUMN {column}")
