"""What lowers a bucket's credit grant: manual draws always, expiries only from its void on."""

from __future__ import annotations

from rating_service.domain.grants import (
    BucketMove,
    grant_idempotency_key,
    grant_reductions,
    may_lower_grants,
)
from rating_service.domain.postings import EntryKind

K = EntryKind


def test_manual_draws_lower_the_grant_and_outcome_draws_do_not() -> None:
    """A ConsumeBucket draw is never metered; an outcome's draw is, and the grant covers it."""
    moves = [
        BucketMove(2, K.BUCKET_CONSUMED, "a", "drawn", 3),
        BucketMove(3, K.OUTCOME_RATED, "a", "drawn", 1),
        BucketMove(4, K.BUCKET_CONSUMED, "b", "drawn", 2),
    ]
    assert grant_reductions(moves, {}) == {"a": 3, "b": 2}


def test_units_expiring_from_the_void_on_lower_the_grant_and_earlier_or_natural_ones_not() -> None:
    """The void's expiry and later returns count; a natural expiry's grant expires by itself."""
    moves = [
        BucketMove(5, K.OUTCOME_REVERSED, "a", "expired", 1),  # before the void at 6
        BucketMove(6, K.BUCKET_VOIDED, "a", "expired", 5),
        BucketMove(8, K.OUTCOME_RELEASED, "a", "expired", 1),
        BucketMove(9, K.OUTCOME_REVERSED, "a", "expired", 1),
        BucketMove(9, K.BUCKET_EXPIRED, "b", "expired", 4),
        BucketMove(10, K.OUTCOME_RELEASED, "b", "expired", 1),
    ]
    assert grant_reductions(moves, {"a": 6}) == {"a": 7}


def test_only_draws_or_returns_to_a_voided_bucket_make_planning_ask() -> None:
    assert may_lower_grants({K.BUCKET_CONSUMED}, has_voided_bucket=False)
    assert not may_lower_grants({K.OUTCOME_RELEASED, K.OUTCOME_RATED}, has_voided_bucket=False)
    assert may_lower_grants({K.OUTCOME_RELEASED}, has_voided_bucket=True)
    assert not may_lower_grants({K.OUTCOME_RATED, K.BUCKET_CREATED}, has_voided_bucket=True)


def test_version_one_keeps_the_key_grants_had_and_later_versions_differ() -> None:
    first = grant_idempotency_key("c", "b")
    assert first == grant_idempotency_key("c", "b", 1)
    assert first.startswith("rs-grant-")
    assert len(first) == len("rs-grant-") + 48
    assert grant_idempotency_key("c", "b", 2) == f"{first}-v2"
    assert len({grant_idempotency_key("c", "b", v) for v in range(1, 50)}) == 49
