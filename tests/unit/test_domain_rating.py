"""Rating and quoting (rating_service.domain.rating): one set of rules, so a quote is what recording charges."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating_service.domain.buckets import Bucket, BucketSource, Draw
from rating_service.domain.errors import NoPrice
from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price, RateCardVersion
from rating_service.domain.rating import quote, rate_outcome

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
EFFECTIVE = datetime(2026, 1, 1, tzinfo=UTC)


def card(price: str = "0.99", window: timedelta = timedelta(hours=24)) -> RateCardVersion:
    return RateCardVersion(
        "standard",
        EFFECTIVE,
        "USD",
        {"resolution": Price("resolution", Money.of(price, "USD"), window)},
    )


def bucket(
    bucket_id: str,
    remaining: int,
    *,
    outcome_type: str = "resolution",
    valid_from: datetime = NOW - 30 * DAY,
    valid_until: datetime = NOW + 30 * DAY,
    priority: int = 0,
    created_sequence: int = 1,
) -> Bucket:
    return Bucket(
        bucket_id=bucket_id,
        outcome_type=outcome_type,
        quantity=remaining,
        remaining=remaining,
        held=0,
        valid_from=valid_from,
        valid_until=valid_until,
        unit_price=Money.of("0.99", "USD"),
        source=BucketSource.PURCHASE,
        priority=priority,
        created_sequence=created_sequence,
    )


# ---- rate_outcome -----------------------------------------------------------------------


def test_an_outcome_no_bucket_covers_is_charged_the_unit_price() -> None:
    """No bucket: bucket_id is None and the charge is exactly the rate card's 0.99."""
    rating = rate_outcome(card("0.99"), [], "resolution", NOW)

    assert rating.bucket_id is None
    assert rating.charged == Money.of("0.99", "USD")
    assert rating.unit_price == Money.of("0.99", "USD")
    assert rating.rate_card_version == EFFECTIVE


def test_an_outcome_a_bucket_covers_is_charged_zero_in_the_card_currency() -> None:
    """The first bucket in burn-down order covers it; the charge is USD 0, the price still 0.99."""
    rating = rate_outcome(
        card("0.99"),
        [bucket("late", 5, valid_until=NOW + 60 * DAY), bucket("soon", 5)],
        "resolution",
        NOW,
    )

    assert rating.bucket_id == "soon"
    assert rating.charged == Money.zero("USD")
    assert rating.unit_price == Money.of("0.99", "USD")


def test_a_rating_carries_the_settlement_window_of_its_price() -> None:
    """A price with a 2-hour quiet period gives the rating a 2-hour settlement window."""
    rating = rate_outcome(card(window=timedelta(hours=2)), [], "resolution", NOW)

    assert rating.settlement_window == timedelta(hours=2)


def test_an_outcome_type_the_rate_card_does_not_price_is_no_price() -> None:
    """Rating `escalation` on a card that prices only `resolution` raises NoPrice naming both."""
    with pytest.raises(NoPrice) as raised:
        rate_outcome(card(), [bucket("b", 5, outcome_type="escalation")], "escalation", NOW)

    assert raised.value.metadata == {"rate_card_id": "standard", "outcome_type": "escalation"}


def test_a_bucket_outside_its_validity_or_of_another_type_covers_nothing() -> None:
    """Scheduled, expired and other-type buckets leave the outcome billable."""
    buckets = [
        bucket("scheduled", 5, valid_from=NOW + DAY),
        bucket("expired", 5, valid_from=NOW - 9 * DAY, valid_until=NOW),
        bucket("other", 5, outcome_type="escalation"),
    ]

    rating = rate_outcome(card(), buckets, "resolution", NOW)

    assert (rating.bucket_id, rating.charged) == (None, Money.of("0.99", "USD"))


# ---- quote ------------------------------------------------------------------------------


def test_a_quote_covers_what_buckets_hold_and_bills_the_rest() -> None:
    """10 outcomes against buckets of 3 and 4 cover 7 and bill 3 x 0.99 = 2.97."""
    buckets = [bucket("a", 3), bucket("b", 4, valid_until=NOW + 60 * DAY)]

    q = quote(card("0.99"), buckets, "resolution", 10, NOW)

    assert (q.units_covered, q.units_billable) == (7, 3)
    assert q.total == Money.of("2.97", "USD")
    assert q.lines == (Draw("a", 3, 0), Draw("b", 4, 0))
    assert q.rate_card_version == EFFECTIVE


def test_a_quote_of_zero_outcomes_costs_zero_and_draws_nothing() -> None:
    """Quantity 0 is a valid question whose answer is nothing."""
    q = quote(card(), [bucket("a", 3)], "resolution", 0, NOW)

    assert (q.units_covered, q.units_billable, q.total, q.lines) == (
        0,
        0,
        Money.zero("USD"),
        (),
    )


def test_a_quote_of_a_billion_outcomes_is_exact() -> None:
    """10^9 x 0.333333333 is exactly 333,333,333 with no rounding."""
    q = quote(card("0.333333333"), [], "resolution", 10**9, NOW)

    assert q.total == Money.of("333333333", "USD")


@st.composite
def situations(draw: st.DrawFn) -> tuple[RateCardVersion, list[Bucket]]:
    """A price and up to 4 buckets, some outside their validity or of another type."""
    price = draw(st.integers(min_value=0, max_value=5 * 10**9))
    count = draw(st.integers(min_value=0, max_value=4))
    buckets = [
        bucket(
            f"b{i}",
            draw(st.integers(min_value=0, max_value=6)),
            outcome_type=draw(st.sampled_from(["resolution", "resolution", "escalation"])),
            valid_from=NOW + draw(st.sampled_from([-30, -1, 1])) * DAY,
            valid_until=NOW + draw(st.sampled_from([0, 2, 3, 40])) * DAY,
            priority=draw(st.integers(min_value=0, max_value=2)),
            created_sequence=i + 1,
        )
        for i in range(count)
    ]
    version = RateCardVersion(
        "standard",
        EFFECTIVE,
        "USD",
        {"resolution": Price("resolution", Money("USD", price))},
    )
    return version, buckets


@given(situations(), st.integers(min_value=0, max_value=30))
def test_a_quote_of_n_equals_n_single_ratings_applied_one_after_another(
    situation: tuple[RateCardVersion, list[Bucket]], n: int
) -> None:
    """Rating n outcomes one by one, each drawing its unit, covers, charges and draws the same."""
    version, buckets = situation

    q = quote(version, buckets, "resolution", n, NOW)

    remaining = list(buckets)
    covered, charged, drawn_from = 0, Money.zero("USD"), []
    for _ in range(n):
        rating = rate_outcome(version, remaining, "resolution", NOW)
        charged += rating.charged
        if rating.bucket_id is not None:
            covered += 1
            drawn_from.append(rating.bucket_id)
            remaining = [
                dataclasses.replace(b, remaining=b.remaining - 1)
                if b.bucket_id == rating.bucket_id
                else b
                for b in remaining
            ]
    left = {b.bucket_id: b.remaining for b in remaining}
    runs = [(bucket_id, len(list(run))) for bucket_id, run in itertools.groupby(drawn_from)]
    assert (q.units_covered, q.units_billable) == (covered, n - covered)
    assert q.total == charged
    assert [(d.bucket_id, d.units, d.remaining) for d in q.lines] == [
        (bucket_id, units, left[bucket_id]) for bucket_id, units in runs
    ]
