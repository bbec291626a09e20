"""The reporter's side of the database: cursors, planned meter events, grants, summaries.

The ledger is the outbox: each customer's head sequence says where there is
work, and ``stripe_cursors.sequence`` how far it has been planned. Every
statement the reporter needs lives in this package, one module per concern:

    _cursors        the cursor per customer: work to plan, verified, parked
    _range_plans    planning a ledger range into meter events on a snapshot; saving it once
    _carriers       the meter event carrying a reversed outcome, and what a plan saw of it
    _meter_events   planned events not yet in Stripe; marking them sent
    _meter_cancels  cancels reversals planned; what Stripe's answer settles
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
from rating_service.ledger.outbox._meter_cancels import (
    PendingCancel,
    cancel_refused,
    mark_cancelled,
    pending_cancels,
)
from rating_service.ledger.outbox._meter_events import (
    UnsentEvent,
    mark_sent,
    unsent_event_names,
    unsent_events,
)
from rating_service.ledger.outbox._owed_credits import (
    OwedCredit,
    close_months,
    months_to_close,
    owed_credits,
    owed_credits_to_create,
    record_owed_credit,
)
from rating_service.ledger.outbox._range_plans import RangePlan, plan_range, save_plan
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
    "RangePlan",
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
    "months_to_close",
    "owed_credits",
    "owed_credits_to_create",
    "park",
    "pending_cancels",
    "plan_range",
    "priced_outcome_types",
    "record_grant",
    "record_owed_credit",
    "record_stale_voided",
    "reporting_standing",
    "save_plan",
    "stale_grants",
    "unpark_all",
    "unsent_event_names",
    "unsent_events",
    "usage_by_period",
]
