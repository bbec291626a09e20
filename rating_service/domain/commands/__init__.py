"""The requests as plain values: validated here, the mutating ones fingerprinted for idempotency.

Every rule about what a request may ask (identifiers, quantities, sizes,
states) is a command's ``validate``; the API only converts. A fingerprint is
a hash of what the caller sent (an absent time stays absent), so a retry that
left ``occurred_at`` unset is the same payload, and a reused key with any
other payload is detected. One module per area:

    _rules      the limits, field checks and fingerprint every command shares
    _outcomes   record (one or a batch), confirm, reverse an outcome
    _buckets    create, consume, void buckets
    _catalog    customers, rate cards, spend controls
    _reads      the reads: quotes, balances, ledger pages, alerts, explanations, bills
"""

from rating_service.domain.commands._buckets import (
    DEFAULT_BUCKET_VALIDITY,
    ConsumeBucket,
    CreateBucket,
    VoidBucket,
)
from rating_service.domain.commands._catalog import PutCustomer, PutRateCard, PutSpendControls
from rating_service.domain.commands._outcomes import (
    MAX_BATCH,
    ConfirmOutcome,
    OutcomeState,
    RecordOutcome,
    ReverseOutcome,
    require_batch_size,
)
from rating_service.domain.commands._reads import (
    ExplainOutcome,
    GetBalance,
    ListLedgerEntries,
    PreviewInvoice,
    QuoteCost,
    SimulateRateCard,
    WatchAlerts,
    page_size_of,
)
from rating_service.domain.commands._rules import MAX_QUANTITY

__all__ = [
    "DEFAULT_BUCKET_VALIDITY",
    "MAX_BATCH",
    "MAX_QUANTITY",
    "ConfirmOutcome",
    "ConsumeBucket",
    "CreateBucket",
    "ExplainOutcome",
    "GetBalance",
    "ListLedgerEntries",
    "OutcomeState",
    "PreviewInvoice",
    "PutCustomer",
    "PutRateCard",
    "PutSpendControls",
    "QuoteCost",
    "RecordOutcome",
    "ReverseOutcome",
    "SimulateRateCard",
    "VoidBucket",
    "WatchAlerts",
    "page_size_of",
    "require_batch_size",
]
