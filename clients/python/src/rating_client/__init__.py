"""Typed async client for rating.v1.RatingService.

The modules behind it are private; everything a caller needs is here. The
generated wire types stay available as ``rating_client.v1`` for the server
and for other tooling.
"""

from rating_client._client import RatingClient
from rating_client._errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RatingError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnexpectedError,
    error_from_rpc_error,
    error_from_status,
)
from rating_client._money import decimal_to_money, money_to_decimal
from rating_client._types import (
    Balance,
    Bucket,
    BucketLine,
    BucketSource,
    Confirmation,
    Consumption,
    Customer,
    LedgerEntry,
    Money,
    NewOutcome,
    OutcomeRecorded,
    Posting,
    Price,
    Quote,
    RateCardVersion,
    RecordState,
    Reversal,
)

__all__ = [
    "AlreadyExistsError",
    "Balance",
    "Bucket",
    "BucketLine",
    "BucketSource",
    "Confirmation",
    "Consumption",
    "Customer",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "LedgerEntry",
    "Money",
    "NewOutcome",
    "NotFoundError",
    "OutcomeRecorded",
    "PermissionDeniedError",
    "Posting",
    "Price",
    "Quote",
    "RateCardVersion",
    "RatingClient",
    "RatingError",
    "RecordState",
    "ResourceExhaustedError",
    "Reversal",
    "UnauthenticatedError",
    "UnavailableError",
    "UnexpectedError",
    "decimal_to_money",
    "error_from_rpc_error",
    "error_from_status",
    "money_to_decimal",
]
