"""stripe reporter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:44:58.770042
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stripe_cursors",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("verified_stripe_id", sa.String(length=255), nullable=True),
        sa.Column("parked_error", sa.Text(), nullable=True),
        sa.Column("parked_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "stripe_meter_events",
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("planned_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("identifier"),
    )
    with op.batch_alter_table("stripe_meter_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_meter_events_customer_period",
            ["customer_id", "event_name", "period"],
            unique=False,
        )
        batch_op.create_index(
            "ix_stripe_meter_events_unsent",
            ["planned_at"],
            unique=False,
            sqlite_where=sa.text("sent_at IS NULL"),
            postgresql_where=sa.text("sent_at IS NULL"),
        )

    op.create_table(
        "stripe_usage_periods",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("planned", sa.BigInteger(), nullable=False),
        sa.Column("debt", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "event_name", "period"),
    )
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_buckets_without_grant",
            ["customer_id"],
            unique=False,
            sqlite_where=sa.text("stripe_credit_grant_id IS NULL"),
            postgresql_where=sa.text("stripe_credit_grant_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("buckets", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_buckets_without_grant",
            sqlite_where=sa.text("stripe_credit_grant_id IS NULL"),
            postgresql_where=sa.text("stripe_credit_grant_id IS NULL"),
        )

    op.drop_table("stripe_usage_periods")
    with op.batch_alter_table("stripe_meter_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_stripe_meter_events_unsent",
            sqlite_where=sa.text("sent_at IS NULL"),
            postgresql_where=sa.text("sent_at IS NULL"),
        )
        batch_op.drop_index("ix_stripe_meter_events_customer_period")

    op.drop_table("stripe_meter_events")
    op.drop_table("stripe_cursors")
