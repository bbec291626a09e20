"""The reporter's side of the database: cursors, planned meter events, grants, summaries.

The ledger is the outbox: each customer's head sequence says where there is
work, and ``stripe_cursors.sequence`` how far it has been planned. Every
statement the reporter needs lives in this package, one module per concern:

    _cursors        the cursor per customer: work to plan, verified, parked
    _meter_events   planning a ledger range into meter events; unsent, sent, cancels
    _owed_credits   closed months' debts into credits; the grant once made
    _credit_grants  each bucket's grant version: planned, created, older ones voided
    _summaries      read-only: the backlog, what reconciliation compares, priced types
    _standing       read-only: each customer's reporting lag and parking, for an operator
"""

from rating_service.ledger.outbox._credit_grants import (
    GrantToCreate,
    StaleGrants,
    grants_to_create,
    record_grant,
    record_stale_voided,
    stale_grants,
)
from rating_service.ledger.outbox._cursors import (
    CustomerWork,
    customers_with_work,
    mark_verified,
    park,
    unpark_all,
)
from rating_service.ledger.outbox._meter_events import (
    PendingCancel,
    UnsentEvent,
    cancel_refused,
    mark_cancelled,
    mark_sent,
    pending_cancels,
    plan_customer,
    unsent_event_names,
    unsent_events,
)
from rating_service.ledger.outbox._owed_credits import (
    OwedCredit,
    close_months,
    owed_credits,
    owed_credits_to_create,
    record_owed_credit,
)
from rating_service.ledger.outbox._standing import ReportingStanding, reporting_standing
from rating_service.ledger.outbox._summaries import (
    Backlog,
    BucketGrant,
    MonthBill,
    PeriodUsage,
    backlog,
    bucket_grants,
    month_bill,
    priced_outcome_types,
    usage_by_period,
)

__all__ = [
    "Backlog",
    "BucketGrant",
    "CustomerWork",
    "GrantToCreate",
    "MonthBill",
    "OwedCredit",
    "PendingCancel",
    "PeriodUsage",
    "ReportingStanding",
    "StaleGrants",
    "UnsentEvent",
    "backlog",
    "bucket_grants",
    "cancel_refused",
    "close_months",
    "customers_with_work",
    "grants_to_create",
    "mark_cancelled",
    "mark_sent",
    "mark_verified",
    "month_bill",
    "owed_credits",
    "owed_credits_to_create",
    "park",
    "pending_cancels",
    "plan_customer",
    "priced_outcome_types",
    "record_grant",
    "record_owed_credit",
    "record_stale_voided",
    "reporting_standing",
    "stale_grants",
    "unpark_all",
    "unsent_event_names",
    "unsent_events",
    "usage_by_period",
]
