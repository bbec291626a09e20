"""Bucket calls in and out: CreateBucket, ConsumeBucket, VoidBucket, GetBalance, QuoteCost.

What cannot become a domain value raises InvalidArgument here (see ``servicer``).
"""

from __future__ import annotations

from datetime import datetime

from rating_client.v1 import rating_pb2 as pb

from rating_service.api.wire import (
    money_in,
    money_out,
    set_money,
    time_in,
    time_out,
)
from rating_service.domain import buckets as dbuckets
from rating_service.domain import results
from rating_service.domain.commands import (
    ConsumeBucket,
    CreateBucket,
    GetBalance,
    QuoteCost,
    VoidBucket,
)
from rating_service.domain.errors import InvalidArgument
from rating_service.domain.rating import Quote

_SOURCES_IN = {
    pb.BUCKET_SOURCE_UNSPECIFIED: dbuckets.BucketSource.PURCHASE,
    pb.BUCKET_SOURCE_PURCHASE: dbuckets.BucketSource.PURCHASE,
    pb.BUCKET_SOURCE_REALLOCATION: dbuckets.BucketSource.REALLOCATION,
    pb.BUCKET_SOURCE_PROMOTIONAL: dbuckets.BucketSource.PROMOTIONAL,
}
_SOURCES_OUT = {source: number for number, source in _SOURCES_IN.items() if number}
_STATUSES_OUT = {
    dbuckets.BucketStatus.ACTIVE: pb.BUCKET_STATUS_ACTIVE,
    dbuckets.BucketStatus.SCHEDULED: pb.BUCKET_STATUS_SCHEDULED,
    dbuckets.BucketStatus.EXPIRED: pb.BUCKET_STATUS_EXPIRED,
    dbuckets.BucketStatus.EXHAUSTED: pb.BUCKET_STATUS_EXHAUSTED,
    dbuckets.BucketStatus.VOIDED: pb.BUCKET_STATUS_VOIDED,
}


def create_bucket_in(request: pb.CreateBucketRequest) -> CreateBucket:
    source = _SOURCES_IN.get(request.source)
    if source is None:
        raise InvalidArgument.field("source", "is not a known BucketSource")
    size = request.WhichOneof("size")
    return CreateBucket(
        customer_id=request.customer_id,
        bucket_id=request.bucket_id,
        outcome_type=request.outcome_type,
        quantity=request.quantity if size == "quantity" else None,
        funding=money_in(request.funding, "funding") if size == "funding" else None,
        valid_from=time_in(request, "valid_from"),
        valid_until=time_in(request, "valid_until"),
        unit_price=money_in(request.unit_price, "unit_price")
        if request.HasField("unit_price")
        else None,
        source=source,
        priority=request.priority,
    )


def consume_bucket_in(request: pb.ConsumeBucketRequest) -> ConsumeBucket:
    return ConsumeBucket(
        customer_id=request.customer_id,
        request_id=request.request_id,
        outcome_type=request.outcome_type,
        quantity=request.quantity,
        bucket_id=request.bucket_id,
        reason=request.reason,
    )


def void_bucket_in(request: pb.VoidBucketRequest) -> VoidBucket:
    return VoidBucket(
        customer_id=request.customer_id, bucket_id=request.bucket_id, reason=request.reason
    )


def get_balance_in(request: pb.GetBalanceRequest) -> GetBalance:
    return GetBalance(customer_id=request.customer_id)


def quote_cost_in(request: pb.QuoteCostRequest) -> QuoteCost:
    return QuoteCost(
        customer_id=request.customer_id,
        outcome_type=request.outcome_type,
        quantity=request.quantity,
        at=time_in(request, "at"),
    )


def bucket_out(
    bucket: dbuckets.Bucket,
    now: datetime,
    *,
    replayed: bool = False,
    sequence: int = 0,
    exhaustion: datetime | None = None,
) -> pb.Bucket:
    return pb.Bucket(
        bucket_id=bucket.bucket_id,
        outcome_type=bucket.outcome_type,
        quantity=bucket.quantity,
        remaining=bucket.remaining,
        held=bucket.held,
        valid_from=time_out(bucket.valid_from),
        valid_until=time_out(bucket.valid_until),
        unit_price=money_out(bucket.unit_price),
        source=_SOURCES_OUT[bucket.source],
        status=_STATUSES_OUT[bucket.status(now)],
        priority=bucket.priority,
        replayed=replayed,
        ledger_sequence=sequence or bucket.created_sequence,
        projected_exhaustion=None if exhaustion is None else time_out(exhaustion),
    )


def consumed_out(result: results.Consumed) -> pb.ConsumeBucketResponse:
    return pb.ConsumeBucketResponse(
        consumed=result.consumed,
        lines=[
            pb.BucketLine(bucket_id=d.bucket_id, units=d.units, remaining=d.remaining)
            for d in result.lines
        ],
        remaining_total=result.remaining_total,
        ledger_sequence=result.ledger_sequence,
        replayed=result.replayed,
    )


def bucket_voided_out(result: results.BucketVoided, now: datetime) -> pb.VoidBucketResponse:
    return pb.VoidBucketResponse(
        bucket=bucket_out(result.bucket, now),
        units_expired=result.units_expired,
        ledger_sequence=result.ledger_sequence,
        void_time=time_out(result.voided_at),
        replayed=result.replayed,
    )


def balance_out(balance: results.Balance, now: datetime) -> pb.GetBalanceResponse:
    return pb.GetBalanceResponse(
        buckets=[
            bucket_out(b, now, exhaustion=balance.exhaustion.get(b.bucket_id))
            for b in balance.buckets
        ],
        period_start=time_out(balance.period_start),
        period_outcomes=balance.period_outcomes,
        period_charged=money_out(balance.period_charged),
        pending_outcomes=balance.pending_outcomes,
        pending_charge=money_out(balance.pending_charge),
        ledger_sequence=balance.ledger_sequence,
        forecast=pb.BalanceForecast(
            projected_period_outcomes=balance.projected_outcomes,
            projected_period_charge=money_out(balance.projected_charge),
        ),
    )


def quote_out(quote: Quote) -> pb.QuoteCostResponse:
    response = pb.QuoteCostResponse(
        unit_price=money_out(quote.unit_price),
        units_covered=quote.units_covered,
        units_billable=quote.units_billable,
        total=money_out(quote.total),
        rate_card_version=time_out(quote.rate_card_version),
        lines=[
            pb.BucketLine(bucket_id=d.bucket_id, units=d.units, remaining=d.remaining)
            for d in quote.lines
        ],
    )
    if quote.limit_remaining is not None:
        set_money(response.limit_remaining, quote.limit_remaining)
    return response
