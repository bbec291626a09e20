"""usage days: daily counts of settlements and reversals; the rate card each outcome used

``usage_days`` counts, per customer, UTC day, outcome type and unit price,
the outcomes settled and reversed (and of those, the ones a bucket covered).
The write path keeps it in the transaction of each entry (``ledger.staging``);
invoices, re-pricing and forecasts read it instead of the entries, and
``verify`` replays it. ``outcomes.rate_card_id`` records the card that priced
an outcome, for ``ExplainOutcome``.

Existing ledgers are backfilled: the counts from their entries (with each
outcome's unit price from its ``outcomes`` row), and the rate card from each
customer's current one (the best the ledger knew before).

Revision ID: 0007
Revises: 0006
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAY_US = 86_400_000_000
CHUNK = 10_000
COUNTS = ("settled", "reversed", "covered_settled", "covered_reversed")


def upgrade() -> None:
    table = op.create_table(
        "usage_days",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("outcome_type", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("unit_price_nanos", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint(
            "customer_id", "day", "outcome_type", "currency", "unit_price_nanos"
        ),
    )
    op.add_column(
        "outcomes",
        sa.Column("rate_card_id", sa.String(length=128), server_default="", nullable=False),
    )
    op.execute(
        "UPDATE outcomes SET rate_card_id = (SELECT c.rate_card_id FROM customers c "
        "WHERE c.customer_id = outcomes.customer_id)"
    )
    _backfill(table)


def _backfill(table: sa.Table) -> None:
    """Count every settlement and reversal already in the ledger, one day at a time."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT e.customer_id, e.kind, e.occurred_at, e.outcome_type, e.bucket_id, "
            "o.currency, o.unit_price_nanos FROM ledger_entries e JOIN outcomes o "
            "ON o.customer_id = e.customer_id AND o.outcome_id = e.outcome_id "
            "WHERE e.kind IN ('OUTCOME_RATED', 'OUTCOME_REVERSED')"
        ).execution_options(stream_results=True)
    )
    counts: dict[tuple[str, int, str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for customer_id, kind, occurred_at, outcome_type, bucket_id, currency, price in rows:
        key = (customer_id, occurred_at // DAY_US * DAY_US, outcome_type, currency, price)
        reversed_ = kind == "OUTCOME_REVERSED"
        counts[key][1 if reversed_ else 0] += 1
        if bucket_id:
            counts[key][3 if reversed_ else 2] += 1
    found = [
        {
            "customer_id": customer_id,
            "day": day,
            "outcome_type": outcome_type,
            "currency": currency,
            "unit_price_nanos": price,
            **dict(zip(COUNTS, values, strict=True)),
        }
        for (customer_id, day, outcome_type, currency, price), values in sorted(counts.items())
    ]
    for start in range(0, len(found), CHUNK):
        op.bulk_insert(table, found[start : start + CHUNK])


def downgrade() -> None:
    op.drop_column("outcomes", "rate_card_id")
    op.drop_table("usage_days")
