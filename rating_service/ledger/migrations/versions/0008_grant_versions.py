"""grant versions: a bucket's credit grant replaced when a manual draw or a void lowers it

Stripe cannot lower a credit grant in place (an update changes only
``expires_at`` and ``metadata``), so a bucket's grant is replaced: the
reporter plans version n+1 with the bucket's remaining credit, in the
transaction that moves the cursor past the draw or the void, creates it, then
voids every older grant of the bucket. ``stripe_grant_version`` and
``stripe_grant_units`` are the version planned and its units (NULL: the
bucket's quantity, version 1); ``stripe_grant_stale`` says older grants may
still be live in Stripe. Buckets the reporter already passed a manual draw or
a void of get that next version now (from the ledger's postings up to each
customer's cursor), so existing grants are brought in step too. A meter event
sent after Stripe's 35 days is stamped
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
_RETURNS = ("BUCKET_VOIDED", "OUTCOME_RELEASED", "OUTCOME_REVERSED")
"""Entries that move units of a voided bucket to ``expired`` (domain/grants.py)."""


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
    _plan_versions_already_passed()
    if op.get_bind().dialect.name != "sqlite":
        return
    for action in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER buckets_grant_exact_{action.lower()} BEFORE {action} ON buckets "
            "WHEN NEW.stripe_grant_units IS NOT NULL "
            "AND typeof(NEW.stripe_grant_units) != 'integer' "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: buckets holds exact integers only'); END"
        )


def _plan_versions_already_passed() -> None:
    """What the reporter would have planned had it known grant versions (domain/grants.py):
    manual draws, and units expired from a bucket's void on, up to each customer's cursor."""
    bind = op.get_bind()
    voided = {
        (r.customer_id, r.bucket_id): int(r.void_sequence)
        for r in bind.execute(
            sa.text(
                "SELECT customer_id, bucket_id, void_sequence FROM buckets "
                "WHERE void_sequence IS NOT NULL"
            )
        )
    }
    moves = bind.execute(
        sa.text(
            "SELECT p.customer_id, p.sequence, p.account, p.amount, e.kind "
            "FROM ledger_postings p "
            "JOIN ledger_entries e ON e.customer_id = p.customer_id AND e.sequence = p.sequence "
            "JOIN stripe_cursors c ON c.customer_id = p.customer_id "
            "WHERE p.sequence <= c.sequence AND p.amount > 0 "
            "AND ((e.kind = 'BUCKET_CONSUMED' AND p.account LIKE :drawn) "
            f"OR (e.kind IN {_RETURNS!r} AND p.account LIKE :expired))"
        ),
        {"drawn": "bucket:%:drawn", "expired": "bucket:%:expired"},
    )
    lost: dict[tuple[str, str], int] = {}
    for m in moves:
        bucket_id, _, part = m.account.removeprefix("bucket:").rpartition(":")
        key = (m.customer_id, bucket_id)
        if part == "expired" and not (key in voided and int(m.sequence) >= voided[key]):
            continue
        lost[key] = lost.get(key, 0) + int(m.amount)
    for (customer_id, bucket_id), units in lost.items():
        bind.execute(
            sa.text(
                "UPDATE buckets SET stripe_grant_units = quantity - :units, "
                "stripe_grant_version = 2, stripe_grant_stale = :stale, "
                "stripe_credit_grant_id = NULL "
                "WHERE customer_id = :customer_id AND bucket_id = :bucket_id"
            ),
            {"units": units, "stale": True, "customer_id": customer_id, "bucket_id": bucket_id},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS buckets_grant_exact_{action}")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too), so no table is rebuilt.
    op.execute("ALTER TABLE stripe_meter_events DROP COLUMN stripe_period")
    for column in ("stripe_grant_stale", "stripe_grant_units", "stripe_grant_version"):
        op.execute(f"ALTER TABLE buckets DROP COLUMN {column}")
