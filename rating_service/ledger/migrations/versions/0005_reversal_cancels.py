"""reversal cancels: which meter event replaces which, cancels planned and done, owed-back credits

A reversal of usage Stripe received less than a day ago cancels the meter
event that carried it and sends the remainder under a new identifier
(``replaces`` names the cancelled event; ``cancel_planned_at`` and
``cancelled_at`` follow the cancel). What a month still owes back when it
closes becomes a credit grant: ``stripe_usage_periods.credited`` counts the
units, ``stripe_owed_credits`` holds each grant (domain/usage.py).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stripe_meter_events") as table:
        table.add_column(sa.Column("replaces", sa.String(length=100), nullable=True))
        table.add_column(sa.Column("cancel_planned_at", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("cancelled_at", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_stripe_meter_events_carrier",
        "stripe_meter_events",
        ["customer_id", "event_name", "last_sequence"],
    )
    with op.batch_alter_table("stripe_usage_periods") as table:
        table.add_column(sa.Column("credited", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "stripe_owed_credits",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("unit_price_nanos", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("planned_at", sa.BigInteger(), nullable=False),
        sa.Column("grant_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "event_name", "period", "number"),
    )


def downgrade() -> None:
    op.drop_table("stripe_owed_credits")
    with op.batch_alter_table("stripe_usage_periods") as table:
        table.drop_column("credited")
    op.drop_index("ix_stripe_meter_events_carrier", table_name="stripe_meter_events")
    with op.batch_alter_table("stripe_meter_events") as table:
        table.drop_column("cancelled_at")
        table.drop_column("cancel_planned_at")
        table.drop_column("replaces")
