"""initial ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-22 02:02:52.281453
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "balances",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=140), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "account", "asset"),
    )
    op.create_table(
        "buckets",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("bucket_id", sa.String(length=128), nullable=False),
        sa.Column("outcome_type", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_nanos", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_sequence", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("stripe_credit_grant_id", sa.String(length=255), nullable=True),
        sa.Column("expired_sequence", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "bucket_id"),
    )
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_buckets_customer_type_until",
            ["customer_id", "outcome_type", "valid_until"],
            unique=False,
        )
        batch_op.create_index(
            "ix_buckets_unexpired_until",
            ["valid_until"],
            unique=False,
            sqlite_where=sa.text("expired_sequence IS NULL"),
            postgresql_where=sa.text("expired_sequence IS NULL"),
        )

    op.create_table(
        "consumptions",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "request_id"),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), server_default="", nullable=False),
        sa.Column("rate_card_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("head_sequence", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("head_hash", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("outcome_type", sa.String(length=128), server_default="", nullable=False),
        sa.Column("outcome_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("request_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("bucket_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="", nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "sequence"),
        sa.UniqueConstraint("transaction_id"),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=140), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "sequence", "position"),
    )
    op.create_table(
        "outcomes",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("outcome_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("outcome_type", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("recorded_state", sa.String(length=10), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("settles_at", sa.BigInteger(), nullable=True),
        sa.Column("bucket_id", sa.String(length=128), nullable=True),
        sa.Column("unit_price_nanos", sa.BigInteger(), nullable=False),
        sa.Column("charged_nanos", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate_card_version", sa.BigInteger(), nullable=False),
        sa.Column("attributes", sa.Text(), server_default="{}", nullable=False),
        sa.Column("record_sequence", sa.BigInteger(), nullable=False),
        sa.Column("settle_sequence", sa.BigInteger(), nullable=True),
        sa.Column("end_sequence", sa.BigInteger(), nullable=True),
        sa.Column("end_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("end_units_returned", sa.BigInteger(), nullable=True),
        sa.Column("end_refunded_nanos", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "outcome_id"),
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outcomes_pending_settles_at",
            ["settles_at"],
            unique=False,
            sqlite_where=sa.text("state = 'PENDING'"),
            postgresql_where=sa.text("state = 'PENDING'"),
        )

    op.create_table(
        "rate_card_versions",
        sa.Column("rate_card_id", sa.String(length=128), nullable=False),
        sa.Column("effective_from", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("prices", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rate_card_id", "effective_from"),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("rate_card_versions")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outcomes_pending_settles_at",
            sqlite_where=sa.text("state = 'PENDING'"),
            postgresql_where=sa.text("state = 'PENDING'"),
        )

    op.drop_table("outcomes")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_entries")
    op.drop_table("customers")
    op.drop_table("consumptions")
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_buckets_unexpired_until")
        batch_op.drop_index("ix_buckets_customer_type_until")

    op.drop_table("buckets")
    op.drop_table("balances")


_APPEND_ONLY = ("ledger_entries", "ledger_postings")


def _create_append_only_triggers() -> None:
    """The database itself refuses to rewrite history, whatever the code does."""
    if op.get_bind().dialect.name == "sqlite":
        for table in _APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
                )
        return
    op.execute(
        "CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$"
    )
    for table in _APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in _APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        return
    for table in _APPEND_ONLY:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")
