"""The spend rules, pure: is a charge past the hard limit, which thresholds did it cross."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rating_service.domain.buckets import Bucket, BucketSource, BucketStatus, plan_consumption
from rating_service.domain.commands import PutSpendControls
from rating_service.domain.errors import BucketNotActive, InvalidArgument, SpendLimitReached
from rating_service.domain.money import Money
from rating_service.domain.postings import EntryKind, bucket_voided, is_balanced
from rating_service.domain.spend import (
    Exposure,
    SpendControls,
    crossed_thresholds,
    limit_remaining,
    require_within_limit,
)

NOW = datetime(2026, 12, 6, tzinfo=UTC)
USD = "USD"


def usd(nanos: int) -> Money:
    return Money(USD, nanos)


def controls(*thresholds: int, hard_limit: int | None = None) -> SpendControls:
    return SpendControls(USD, tuple(thresholds), hard_limit, NOW)


def test_a_charge_that_reaches_the_limit_exactly_is_allowed_one_past_it_refused() -> None:
    limited = controls(hard_limit=10)
    require_within_limit(limited, usd(3), Exposure(charged=5, pending=2))
    with pytest.raises(SpendLimitReached) as raised:
        require_within_limit(limited, usd(4), Exposure(charged=5, pending=2))
    assert raised.value.metadata["hard_limit"] == "0.00000001"


def test_a_zero_charge_no_limit_or_another_currency_is_never_refused() -> None:
    spent = Exposure(charged=100, pending=0)
    require_within_limit(controls(hard_limit=0), usd(0), spent)
    require_within_limit(controls(), usd(5), spent)
    require_within_limit(controls(hard_limit=0), Money("EUR", 5), spent)


def test_limit_remaining_never_goes_below_zero_and_is_none_without_a_limit() -> None:
    assert limit_remaining(controls(hard_limit=10), Exposure(3, 4)) == usd(3)
    assert limit_remaining(controls(hard_limit=10), Exposure(30, 4)) == usd(0)
    assert limit_remaining(controls(5), Exposure(3, 4)) is None


def test_a_charge_crosses_the_thresholds_it_reaches_from_below() -> None:
    spend = controls(2, 5, 8)
    assert crossed_thresholds(spend, USD, 1, 2) == [2]
    assert crossed_thresholds(spend, USD, 2, 3) == []
    assert crossed_thresholds(spend, USD, 1, 9) == [2, 5, 8]
    assert crossed_thresholds(spend, "EUR", 1, 9) == []
    assert crossed_thresholds(spend, USD, 9, 1) == []


def test_controls_need_one_currency_positive_distinct_thresholds_and_a_limit_not_negative() -> None:
    with pytest.raises(InvalidArgument) as raised:
        PutSpendControls(
            "acme", "r", (usd(5), usd(5), usd(0), Money("EUR", 1)), Money(USD, -1)
        ).validate()
    assert [v.field for v in raised.value.violations] == [
        "alert_thresholds[1]",
        "alert_thresholds[2]",
        "alert_thresholds[3].currency_code",
        "hard_limit",
    ]


def test_the_same_controls_in_another_order_are_another_payload_but_a_retry_is_not() -> None:
    first = PutSpendControls("acme", "r", (usd(1), usd(2)), None)
    assert (
        first.fingerprint() == PutSpendControls("acme", "r", (usd(1), usd(2)), None).fingerprint()
    )
    assert (
        first.fingerprint() != PutSpendControls("acme", "r", (usd(1), usd(3)), None).fingerprint()
    )


def voided_bucket() -> Bucket:
    return Bucket(
        bucket_id="annual",
        outcome_type="resolution",
        quantity=10,
        remaining=0,
        held=1,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        unit_price=usd(990_000_000),
        source=BucketSource.PURCHASE,
        priority=0,
        created_sequence=1,
        voided_at=NOW,
    )


def test_a_voided_bucket_is_voided_never_valid_and_a_draw_naming_it_is_not_active() -> None:
    bucket = voided_bucket()
    assert bucket.status(NOW) is BucketStatus.VOIDED
    assert not bucket.is_valid_at(NOW)
    with pytest.raises(BucketNotActive):
        plan_consumption([bucket], quantity=1, at=NOW, outcome_type="", bucket_id="annual")


def test_a_void_moves_the_undrawn_units_from_available_to_expired() -> None:
    tx = bucket_voided("annual", "resolution", 7, NOW)
    assert tx.kind is EntryKind.BUCKET_VOIDED
    assert tx.units == 7
    assert is_balanced(tx.postings)
    assert sorted((p.account, p.amount) for p in tx.postings) == [
        ("bucket:annual:available", -7),
        ("bucket:annual:expired", 7),
    ]
    assert bucket_voided("annual", "resolution", 0, NOW).postings == ()
