"""Bucket burn-down (rating_service.domain.buckets): which bucket pays, and all-or-nothing draws."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating_service.domain.buckets import (
    Bucket,
    BucketSource,
    BucketStatus,
    Draw,
    allocate,
    drawable,
    plan_consumption,
)
from rating_service.domain.errors import (
    BucketNotActive,
    BucketNotFound,
    InsufficientUnits,
    InvalidArgument,
)
from rating_service.domain.money import Money

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def bucket(
    bucket_id: str,
    remaining: int = 10,
    *,
    outcome_type: str = "resolution",
    valid_from: datetime = NOW - 30 * DAY,
    valid_until: datetime = NOW + 30 * DAY,
    priority: int = 0,
    created_sequence: int = 1,
    held: int = 0,
) -> Bucket:
    return Bucket(
        bucket_id=bucket_id,
        outcome_type=outcome_type,
        quantity=remaining + held,
        remaining=remaining,
        held=held,
        valid_from=valid_from,
        valid_until=valid_until,
        unit_price=Money.of("0.99", "USD"),
        source=BucketSource.PURCHASE,
        priority=priority,
        created_sequence=created_sequence,
    )


def ids(buckets: list[Bucket]) -> list[str]:
    return [b.bucket_id for b in buckets]


# ---- burn-down order ---------------------------------------------------------------


def test_the_bucket_that_expires_first_is_drawn_first_whatever_its_priority() -> None:
    """Earliest valid_until wins over a higher priority and an older bucket."""
    late = bucket("late", valid_until=NOW + 60 * DAY, priority=9, created_sequence=1)
    soon = bucket("soon", valid_until=NOW + 10 * DAY, priority=0, created_sequence=2)

    assert ids(drawable([late, soon], "resolution", NOW)) == ["soon", "late"]


def test_among_buckets_expiring_together_the_higher_priority_is_drawn_first() -> None:
    """Same valid_until: priority 5 before priority 1, even when it is newer."""
    low = bucket("low", priority=1, created_sequence=1)
    high = bucket("high", priority=5, created_sequence=2)

    assert ids(drawable([low, high], "resolution", NOW)) == ["high", "low"]


def test_among_equal_expiry_and_priority_the_older_bucket_is_drawn_first() -> None:
    """The lower created_sequence (created earlier in the ledger) goes first."""
    newer = bucket("newer", created_sequence=7)
    older = bucket("older", created_sequence=3)

    assert ids(drawable([newer, older], "resolution", NOW)) == ["older", "newer"]


@st.composite
def bucket_sets(draw: st.DrawFn) -> list[Bucket]:
    """Up to 8 drawable buckets with clashing expiries and priorities, unique sequences."""
    count = draw(st.integers(min_value=0, max_value=8))
    sequences = draw(st.lists(st.integers(1, 1000), min_size=count, max_size=count, unique=True))
    return [
        bucket(
            f"b{i}",
            draw(st.integers(min_value=1, max_value=5)),
            valid_until=NOW + draw(st.integers(min_value=1, max_value=3)) * DAY,
            priority=draw(st.integers(min_value=-2, max_value=2)),
            created_sequence=sequence,
        )
        for i, sequence in enumerate(sequences)
    ]


@given(bucket_sets(), st.randoms(use_true_random=False))
def test_burn_down_order_does_not_depend_on_the_order_buckets_are_loaded_in(
    buckets: list[Bucket], shuffler: object
) -> None:
    """Each bucket comes after every bucket that expires sooner, ranks higher or is older."""
    shuffled = list(buckets)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]

    ordered = drawable(shuffled, "resolution", NOW)

    assert ids(ordered) == ids(drawable(buckets, "resolution", NOW))
    for first, then in itertools.pairwise(ordered):
        assert (first.valid_until, -first.priority, first.created_sequence) < (
            then.valid_until,
            -then.priority,
            then.created_sequence,
        )


# ---- validity and eligibility ------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "valid"),
    [
        (NOW - DAY - timedelta(microseconds=1), False),
        (NOW - DAY, True),
        (NOW, True),
        (NOW + DAY - timedelta(microseconds=1), True),
        (NOW + DAY, False),
    ],
)
def test_a_bucket_is_valid_from_valid_from_inclusive_to_valid_until_exclusive(
    at: datetime, valid: bool
) -> None:
    """The window is [valid_from, valid_until): its first instant counts, its end does not."""
    window = bucket("b", valid_from=NOW - DAY, valid_until=NOW + DAY)

    assert window.is_valid_at(at) is valid
    assert ids(drawable([window], "resolution", at)) == (["b"] if valid else [])


def test_only_buckets_of_the_outcome_type_with_units_left_are_drawable() -> None:
    """Another outcome type, an empty bucket and a bucket whose units are all held are skipped."""
    candidates = [
        bucket("other-type", outcome_type="escalation"),
        bucket("empty", 0),
        bucket("all-held", 0, held=3),
        bucket("ok", 1),
    ]

    assert ids(drawable(candidates, "resolution", NOW)) == ["ok"]


@pytest.mark.parametrize(
    ("subject", "status"),
    [
        (bucket("b", valid_from=NOW + DAY), BucketStatus.SCHEDULED),
        (bucket("b", valid_until=NOW), BucketStatus.EXPIRED),
        (bucket("b", 0), BucketStatus.EXHAUSTED),
        (bucket("b", 0, held=1), BucketStatus.ACTIVE),
        (bucket("b", 1), BucketStatus.ACTIVE),
    ],
)
def test_status_reflects_the_window_first_then_the_units_left(
    subject: Bucket, status: BucketStatus
) -> None:
    """Not yet valid is SCHEDULED, past valid_until EXPIRED, nothing left or held EXHAUSTED."""
    assert subject.status(NOW) is status


# ---- allocate ------------------------------------------------------------------------


def test_allocate_empties_each_bucket_before_drawing_from_the_next() -> None:
    """7 units from buckets of 3, 2 and 5 take 3, 2, then 2 of the third."""
    ordered = [bucket("a", 3), bucket("b", 2), bucket("c", 5)]

    draws = allocate(ordered, 7)

    assert draws == [Draw("a", 3, 0), Draw("b", 2, 0), Draw("c", 2, 3)]


def test_allocate_of_zero_units_draws_nothing() -> None:
    """Quantity 0 yields no draw lines at all."""
    assert allocate([bucket("a", 3)], 0) == []


@given(
    st.lists(st.integers(min_value=0, max_value=20), max_size=6),
    st.integers(min_value=0, max_value=80),
)
def test_allocate_takes_as_much_as_it_can_and_reports_what_is_left(
    sizes: list[int], quantity: int
) -> None:
    """It draws min(quantity, total left), never from an empty bucket, in the given order."""
    ordered = [bucket(f"b{i}", size) for i, size in enumerate(sizes)]

    draws = allocate(ordered, quantity)

    assert sum(d.units for d in draws) == min(quantity, sum(sizes))
    by_id = {b.bucket_id: b for b in ordered}
    assert all(d.units > 0 and d.remaining == by_id[d.bucket_id].remaining - d.units for d in draws)
    assert [d.bucket_id for d in draws] == [b.bucket_id for b in ordered if b.remaining][
        : len(draws)
    ]
    assert all(d.remaining == 0 for d in draws[:-1])


# ---- plan_consumption (ConsumeBucket) ----------------------------------------------


def test_plan_consumption_draws_across_buckets_in_burn_down_order() -> None:
    """Without a bucket_id, 4 units come from the bucket expiring first, then the next."""
    candidates = [bucket("late", 5, valid_until=NOW + 60 * DAY), bucket("soon", 3)]

    draws = plan_consumption(
        candidates, quantity=4, at=NOW, outcome_type="resolution", bucket_id=""
    )

    assert draws == [Draw("soon", 3, 0), Draw("late", 1, 4)]


def test_plan_consumption_refuses_more_than_is_left_and_draws_nothing() -> None:
    """Asking for 9 of 8 units raises InsufficientUnits saying what was requested and available."""
    candidates = [bucket("a", 5), bucket("b", 3)]

    with pytest.raises(InsufficientUnits) as raised:
        plan_consumption(candidates, quantity=9, at=NOW, outcome_type="resolution", bucket_id="")

    assert raised.value.metadata == {"requested": "9", "available": "8"}


def test_plan_consumption_counts_no_units_of_buckets_outside_their_window() -> None:
    """Units of a scheduled or expired bucket are not available, so the draw is refused."""
    candidates = [
        bucket("scheduled", 5, valid_from=NOW + DAY, valid_until=NOW + 9 * DAY),
        bucket("expired", 5, valid_from=NOW - 9 * DAY, valid_until=NOW),
        bucket("ok", 1),
    ]

    with pytest.raises(InsufficientUnits) as raised:
        plan_consumption(candidates, quantity=2, at=NOW, outcome_type="resolution", bucket_id="")

    assert raised.value.metadata["available"] == "1"


def test_plan_consumption_from_a_named_bucket_draws_only_from_it() -> None:
    """With a bucket_id, a bucket that burn-down would use first is left alone."""
    candidates = [bucket("first", 5), bucket("named", 5, valid_until=NOW + 60 * DAY)]

    draws = plan_consumption(candidates, quantity=2, at=NOW, outcome_type="", bucket_id="named")

    assert draws == [Draw("named", 2, 3)]


def test_plan_consumption_from_a_named_bucket_refuses_more_than_it_holds() -> None:
    """Other buckets do not top up a named bucket: 6 from a bucket of 5 is refused."""
    candidates = [bucket("named", 5), bucket("other", 50)]

    with pytest.raises(InsufficientUnits):
        plan_consumption(candidates, quantity=6, at=NOW, outcome_type="", bucket_id="named")


def test_plan_consumption_from_an_unknown_bucket_is_bucket_not_found() -> None:
    """A bucket_id no bucket has raises BucketNotFound naming it."""
    with pytest.raises(BucketNotFound) as raised:
        plan_consumption(
            [bucket("a")], quantity=1, at=NOW, outcome_type="resolution", bucket_id="nope"
        )

    assert raised.value.metadata == {"bucket_id": "nope"}


@pytest.mark.parametrize("at", [NOW - 2 * DAY, NOW + DAY])
def test_plan_consumption_from_a_named_bucket_outside_its_window_is_bucket_not_active(
    at: datetime,
) -> None:
    """Before valid_from or from valid_until on, a named bucket raises BucketNotActive."""
    named = bucket("named", valid_from=NOW - DAY, valid_until=NOW + DAY)

    with pytest.raises(BucketNotActive) as raised:
        plan_consumption([named], quantity=1, at=at, outcome_type="", bucket_id="named")

    assert raised.value.metadata == {"bucket_id": "named"}


def test_plan_consumption_of_another_outcome_type_from_a_named_bucket_is_invalid_outcome_type() -> (
    None
):
    """A named bucket of `resolution` asked for `escalation` names the outcome_type field."""
    with pytest.raises(InvalidArgument) as raised:
        plan_consumption(
            [bucket("named")], quantity=1, at=NOW, outcome_type="escalation", bucket_id="named"
        )

    assert [v.field for v in raised.value.violations] == ["outcome_type"]
