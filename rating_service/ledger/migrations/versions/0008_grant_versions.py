"""grant versions: a bucket's credit grant replaced when a manual draw or a void lowers it

Stripe cannot lower a credit grant in place (an update changes only
``expires_at`` and ``metadata``), so a bucket's grant is replaced: the
reporter plans version n+1 with the bucket's remaining credit, in the
transaction that moves the cursor past the draw or the void, creates it, then
voids every older grant of the bucket. ``stripe_grant_version`` and
``stripe_grant_units`` are the version planned and its units (NULL: the
bucket's quantity, version 1); ``stripe_grant_stale`` says older grants may
still be live in Stripe. A meter event sent after Stripe's 35 days is stamped
later than its window: ``stripe_period`` is the month Stripe counts it in
(NULL: its own).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "AMOUNT_OUT_OF_RANGE"


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a SQLite table rebuild would lose 0003's triggers.
    op.add_column(
        "buckets",
        sa.Column("stripe_grant_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column("buckets", sa.Column("stripe_grant_units", sa.BigInteger(), nullable=True))
    op.add_column(
        "buckets",
        sa.Column("stripe_grant_stale", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "stripe_meter_events", sa.Column("stripe_period", sa.String(length=7), nullable=True)
    )
    if op.get_bind().dialect.name != "sqlite":
        return
    for action in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER buckets_grant_exact_{action.lower()} BEFORE {action} ON buckets "
            "WHEN NEW.stripe_grant_units IS NOT NULL "
            "AND typeof(NEW.stripe_grant_units) != 'integer' "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: buckets holds exact integers only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS buckets_grant_exact_{action}")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too), so no table is rebuilt.
    op.execute("ALTER TABLE stripe_meter_events DROP COLUMN stripe_period")
    for column in ("stripe_grant_stale", "stripe_grant_units", "stripe_grant_version"):
        op.execute(f"ALTER TABLE buckets DROP COLUMN {column}")
