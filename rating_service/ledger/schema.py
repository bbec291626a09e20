"""Tables of the ledger, as SQLAlchemy Core (the hot path inserts lists of rows).

Times are integer microseconds since the Unix epoch (UTC); money is integer
nanos with its currency beside it. ``ledger_entries`` and ``ledger_postings``
are append-only (triggers refuse UPDATE and DELETE); the other tables are
projections kept in the same transactions, and ``verify`` rebuilds them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

ID = String(128)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("stripe_customer_id", String(255), nullable=False, server_default=""),
    Column("rate_card_id", ID, nullable=False, server_default=""),
    Column("head_sequence", BigInteger, nullable=False, server_default="0"),
    Column("head_hash", String(64), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Spend controls (PutSpendControls), read with the chain head: none when currency is NULL.
    Column("spend_currency", String(3), nullable=True),
    Column("spend_thresholds", Text, nullable=True),  # JSON: [nanos, ...], increasing
    Column("spend_hard_limit", BigInteger, nullable=True),  # nanos; NULL: no limit
    Column("spend_updated_at", BigInteger, nullable=True),
)

rate_card_versions = Table(
    "rate_card_versions",
    metadata,
    Column("rate_card_id", ID, nullable=False),
    Column("effective_from", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("prices", Text, nullable=False),  # JSON: [[outcome_type, nanos, window_us], ...]
    Column("recorded_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("rate_card_id", "effective_from"),
)

buckets = Table(
    "buckets",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("bucket_id", ID, nullable=False),
    Column("outcome_type", ID, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price_nanos", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_until", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("created_sequence", BigInteger, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("stripe_credit_grant_id", String(255), nullable=True),
    # Set once the expiry sweep has moved the undrawn units to `expired`.
    Column("expired_sequence", BigInteger, nullable=True),
    # Set by VoidBucket (expired_sequence then holds the same sequence).
    Column("voided_at", BigInteger, nullable=True),
    Column("void_sequence", BigInteger, nullable=True),
    Column("void_units", BigInteger, nullable=True),
    Column("void_fingerprint", String(64), nullable=True),
    # The credit grant version the reporter planned and its units (NULL: quantity); a
    # manual draw or a void plans a new version, and older grants are then voided
    # while stale is set (ledger/outbox/_credit_grants.py).
    Column("stripe_grant_version", Integer, nullable=False, server_default="1"),
    Column("stripe_grant_units", BigInteger, nullable=True),
    Column("stripe_grant_stale", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("customer_id", "bucket_id"),
    Index("ix_buckets_customer_type_until", "customer_id", "outcome_type", "valid_until"),
    Index(
        "ix_buckets_without_grant",
        "customer_id",
        sqlite_where=text("stripe_credit_grant_id IS NULL"),
        postgresql_where=text("stripe_credit_grant_id IS NULL"),
    ),
    Index(
        "ix_buckets_unexpired_until",
        "valid_until",
        sqlite_where=text("expired_sequence IS NULL"),
        postgresql_where=text("expired_sequence IS NULL"),
    ),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("transaction_id", String(36), nullable=False, unique=True),
    Column("kind", String(24), nullable=False),
    Column("outcome_type", ID, nullable=False, server_default=""),
    Column("outcome_id", ID, nullable=False, server_default=""),
    Column("request_id", ID, nullable=False, server_default=""),
    Column("bucket_id", ID, nullable=False, server_default=""),
    Column("units", BigInteger, nullable=False),
    Column("amount_nanos", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False, server_default=""),
    Column("occurred_at", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("customer_id", "sequence"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("account", String(200), nullable=False),
    Column("asset", String(140), nullable=False),
    Column("amount", BigInteger, nullable=False),
    PrimaryKeyConstraint("customer_id", "sequence", "position"),
)

balances = Table(
    "balances",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("account", String(200), nullable=False),
    Column("asset", String(140), nullable=False),
    Column("amount", BigInteger, nullable=False),
    PrimaryKeyConstraint("customer_id", "account", "asset"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("outcome_id", ID, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("outcome_type", ID, nullable=False),
    Column("state", String(10), nullable=False),  # PENDING, SETTLED, RELEASED, REVERSED
    Column("recorded_state", String(10), nullable=False),  # PENDING or SETTLED
    Column("occurred_at", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("settles_at", BigInteger, nullable=True),
    Column("bucket_id", ID, nullable=True),
    Column("unit_price_nanos", BigInteger, nullable=False),
    Column("charged_nanos", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("rate_card_version", BigInteger, nullable=False),
    Column("attributes", Text, nullable=False, server_default="{}"),
    Column("record_sequence", BigInteger, nullable=False),
    Column("settle_sequence", BigInteger, nullable=True),
    Column("end_sequence", BigInteger, nullable=True),
    Column("end_fingerprint", String(64), nullable=True),
    Column("end_units_returned", BigInteger, nullable=True),
    Column("end_refunded_nanos", BigInteger, nullable=True),
    # The rate card that priced the outcome (migration 0007 added it, last).
    Column("rate_card_id", ID, nullable=False, server_default=""),
    PrimaryKeyConstraint("customer_id", "outcome_id"),
    Index(
        "ix_outcomes_pending_settles_at",
        "settles_at",
        sqlite_where=text("state = 'PENDING'"),
        postgresql_where=text("state = 'PENDING'"),
    ),
)

consumptions = Table(
    "consumptions",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("request_id", ID, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("result", Text, nullable=False),  # JSON of the original answer
    PrimaryKeyConstraint("customer_id", "request_id"),
)

# ---- spend controls: their idempotency keys, and the alerts they raised ----------------

spend_control_requests = Table(
    "spend_control_requests",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("request_id", ID, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Text, nullable=False),  # JSON of the controls the call set
    PrimaryKeyConstraint("customer_id", "request_id"),
)

spend_alerts = Table(
    "spend_alerts",
    metadata,
    Column("alert_id", BigInteger, primary_key=True, autoincrement=False),
    Column("customer_id", ID, nullable=False),
    Column("period", String(7), nullable=False),  # YYYY-MM
    Column("currency", String(3), nullable=False),
    Column("threshold_nanos", BigInteger, nullable=False),
    Column("period_charged_nanos", BigInteger, nullable=False),
    Column("crossed_at", BigInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),  # the ledger entry whose charge crossed it
    UniqueConstraint(
        "customer_id", "period", "currency", "threshold_nanos", name="uq_spend_alerts_once"
    ),
    Index("ix_spend_alerts_customer", "customer_id", "alert_id"),
)

spend_alert_counter = Table(
    "spend_alert_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_alert_id", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="spend_alert_counter_one_row"),
)
"""The last alert id given: its row lock (held to COMMIT) keeps alert ids gap-free and in
commit order across replicas."""

usage_days = Table(
    "usage_days",
    metadata,
    # Settlements and reversals per customer, UTC day (its first instant), outcome type and
    # unit price: what invoices, re-pricing and forecasts read instead of the entries.
    Column("customer_id", ID, nullable=False),
    Column("day", BigInteger, nullable=False),
    Column("outcome_type", ID, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("unit_price_nanos", BigInteger, nullable=False),
    Column("settled", BigInteger, nullable=False),
    Column("reversed", BigInteger, nullable=False),
    Column("covered_settled", BigInteger, nullable=False),
    Column("covered_reversed", BigInteger, nullable=False),
    PrimaryKeyConstraint("customer_id", "day", "outcome_type", "currency", "unit_price_nanos"),
)

# ---- the Stripe reporter's state (its outbox follows each customer's ledger) ----------

stripe_cursors = Table(
    "stripe_cursors",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("sequence", BigInteger, nullable=False),  # last ledger sequence planned for Stripe
    Column("verified_stripe_id", String(255), nullable=True),  # Stripe knows this customer
    Column("parked_error", Text, nullable=True),  # set: a permanent error stops this customer
    Column("parked_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)

stripe_usage_periods = Table(
    "stripe_usage_periods",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("event_name", String(100), nullable=False),
    Column("period", String(7), nullable=False),  # YYYY-MM
    Column("planned", BigInteger, nullable=False),  # usage planned for Stripe
    Column("debt", BigInteger, nullable=False),  # reversals not yet netted (domain/usage.py)
    # Units owed back once the period closed, as credit grants (stripe_owed_credits).
    Column("credited", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("customer_id", "event_name", "period"),
)

stripe_meter_events = Table(
    "stripe_meter_events",
    metadata,
    Column("identifier", String(100), primary_key=True),
    Column("customer_id", ID, nullable=False),
    Column("event_name", String(100), nullable=False),
    Column("period", String(7), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("first_sequence", BigInteger, nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
    Column("planned_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    # A replacement names the event it replaces; it is sent once that one is cancelled.
    Column("replaces", String(100), nullable=True),
    Column("cancel_planned_at", BigInteger, nullable=True),  # a reversal cancels this event
    Column("cancelled_at", BigInteger, nullable=True),  # Stripe confirmed the cancel
    # The month Stripe counts the event in when sent after its 35 days (NULL: its own).
    Column("stripe_period", String(7), nullable=True),
    Index(
        "ix_stripe_meter_events_unsent",
        "planned_at",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
    Index("ix_stripe_meter_events_customer_period", "customer_id", "event_name", "period"),
    Index("ix_stripe_meter_events_carrier", "customer_id", "event_name", "last_sequence"),
)

stripe_owed_credits = Table(
    "stripe_owed_credits",
    metadata,
    Column("customer_id", ID, nullable=False),
    Column("event_name", String(100), nullable=False),
    Column("period", String(7), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2...: a late reversal adds another
    Column("units", BigInteger, nullable=False),
    Column("unit_price_nanos", BigInteger, nullable=False),  # the meter's price at month end
    Column("currency", String(3), nullable=False),
    Column("planned_at", BigInteger, nullable=False),
    Column("grant_id", String(255), nullable=True),  # set once Stripe has the grant
    PrimaryKeyConstraint("customer_id", "event_name", "period", "number"),
)

# ---- the API's secret: page tokens are signed with it (migration 0004 draws it) -------

page_token_key = Table(
    "page_token_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", LargeBinary(32), nullable=False),
    CheckConstraint("id = 1", name="page_token_key_one_row"),
)

APPEND_ONLY_TABLES = ("ledger_entries", "ledger_postings")
