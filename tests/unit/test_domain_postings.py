"""Double-entry postings (rating_service.domain.postings): balanced, and on the right accounts.

Each builder is checked two ways: a property over random outcomes, buckets and
instants (every transaction sums to zero per asset, carries no zero posting),
and worked examples that pin which accounts move by how much. A transaction's
effect is read as its net change per (account, asset), so an example states
the balances it moves, not the order of its postings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating_service.domain.buckets import Draw
from rating_service.domain.money import Money
from rating_service.domain.postings import (
    EntryKind,
    OutcomeTake,
    Transaction,
    bucket_consumed,
    bucket_created,
    bucket_expired,
    outcome_held,
    outcome_rated,
    outcome_released,
    outcome_reversed,
    period_of,
)

NOV = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
UNIT = "unit:resolution"
Net = dict[tuple[str, str], int]


def net(*transactions: Transaction) -> Net:
    """The change each transaction makes per (account, asset), zero changes left out."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for tx in transactions:
        for p in tx.postings:
            totals[(p.account, p.asset)] += p.amount
    return {key: amount for key, amount in totals.items() if amount}


def sums_per_asset(tx: Transaction) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for p in tx.postings:
        totals[p.asset] += p.amount
    return dict(totals)


def take(bucket_id: str | None = None, charge: str = "0.99") -> OutcomeTake:
    price = Money.of(charge, "USD")
    return OutcomeTake("conv-1", "resolution", bucket_id, price, price)


# ---- property: every builder balances -------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z0-9_.:\-]{1,24}", fullmatch=True)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
takes = st.builds(
    OutcomeTake,
    outcome_id=identifiers,
    outcome_type=identifiers,
    bucket_id=st.none() | identifiers,
    charge=st.builds(
        Money,
        currency=st.sampled_from(["USD", "EUR"]),
        nanos=st.integers(min_value=0, max_value=10**15),
    ),
)
draw_lists = st.lists(
    st.builds(
        Draw,
        bucket_id=identifiers,
        units=st.integers(min_value=1, max_value=10**6),
        remaining=st.integers(min_value=0, max_value=10**6),
    ),
    min_size=1,
    max_size=5,
)
quantities = st.integers(min_value=1, max_value=10**9)

Builder = Callable[[st.DrawFn], Transaction]
BUILDERS: dict[str, Builder] = {
    "bucket_created": lambda d: bucket_created(
        d(identifiers), d(identifiers), d(quantities), d(instants)
    ),
    "bucket_consumed": lambda d: bucket_consumed(
        d(identifiers), d(identifiers), d(draw_lists), d(instants)
    ),
    "bucket_expired": lambda d: bucket_expired(
        d(identifiers), d(identifiers), d(quantities), d(instants)
    ),
    "outcome_held": lambda d: outcome_held(d(takes), d(instants)),
    "outcome_rated": lambda d: outcome_rated(d(takes), d(instants), was_pending=d(st.booleans())),
    "outcome_released": lambda d: outcome_released(
        d(takes), d(instants), bucket_expired=d(st.booleans())
    ),
    "outcome_reversed": lambda d: outcome_reversed(
        d(takes), d(instants), bucket_expired=d(st.booleans())
    ),
}


@pytest.mark.parametrize("builder", BUILDERS)
@given(data=st.data())
def test_every_builder_yields_postings_that_sum_to_zero_per_asset(
    builder: str, data: st.DataObject
) -> None:
    """Over random takes, buckets and instants, no unit or nano appears or vanishes."""
    tx = BUILDERS[builder](data.draw)

    assert tx.postings
    assert all(total == 0 for total in sums_per_asset(tx).values()), tx.postings
    assert all(p.amount != 0 for p in tx.postings)


# ---- buckets ---------------------------------------------------------------------------


def test_bucket_created_moves_its_quantity_from_issued_to_available() -> None:
    """A bucket of 100 issues 100 units into bucket:<id>:available."""
    tx = bucket_created("b1", "resolution", 100, NOV)

    assert net(tx) == {("bucket:b1:issued", UNIT): -100, ("bucket:b1:available", UNIT): 100}
    assert (tx.kind, tx.bucket_id, tx.units) == (EntryKind.BUCKET_CREATED, "b1", 100)


def test_bucket_consumed_moves_each_draw_from_available_to_drawn() -> None:
    """Draws of 3 from `a` and 2 from `b` move exactly those units; the entry counts 5."""
    tx = bucket_consumed("req-1", "resolution", [Draw("a", 3, 0), Draw("b", 2, 5)], NOV)

    assert net(tx) == {
        ("bucket:a:available", UNIT): -3,
        ("bucket:a:drawn", UNIT): 3,
        ("bucket:b:available", UNIT): -2,
        ("bucket:b:drawn", UNIT): 2,
    }
    assert (tx.kind, tx.request_id, tx.units, tx.bucket_id) == (
        EntryKind.BUCKET_CONSUMED,
        "req-1",
        5,
        "",
    )


def test_bucket_consumed_from_one_bucket_names_that_bucket() -> None:
    """A single draw's entry carries its bucket_id."""
    tx = bucket_consumed("req-1", "resolution", [Draw("a", 3, 0)], NOV)

    assert tx.bucket_id == "a"


def test_bucket_expired_moves_the_units_left_from_available_to_expired() -> None:
    """Expiring 7 units moves 7 from bucket:<id>:available to bucket:<id>:expired."""
    tx = bucket_expired("b1", "resolution", 7, NOV)

    assert net(tx) == {("bucket:b1:available", UNIT): -7, ("bucket:b1:expired", UNIT): 7}
    assert tx.kind is EntryKind.BUCKET_EXPIRED


# ---- outcomes --------------------------------------------------------------------------


def test_a_held_outcome_with_a_bucket_moves_one_unit_from_available_to_held() -> None:
    """A pending outcome covered by b1 holds 1 unit of b1 and counts 1 pending outcome."""
    tx = outcome_held(take("b1", charge="0"), NOV)

    assert net(tx) == {
        ("world", UNIT): -1,
        ("outcomes:pending", UNIT): 1,
        ("bucket:b1:available", UNIT): -1,
        ("bucket:b1:held", UNIT): 1,
    }
    assert (tx.kind, tx.outcome_id, tx.bucket_id, tx.units) == (
        EntryKind.OUTCOME_HELD,
        "conv-1",
        "b1",
        1,
    )


def test_a_held_outcome_without_a_bucket_makes_its_charge_pending() -> None:
    """A billable pending outcome books its 0.99 to charges:pending, not to usage."""
    tx = outcome_held(take(None), NOV)

    assert net(tx) == {
        ("world", UNIT): -1,
        ("outcomes:pending", UNIT): 1,
        ("world", "USD"): -990_000_000,
        ("charges:pending", "USD"): 990_000_000,
    }
    assert tx.amount == Money.of("0.99", "USD")


def test_a_confirmed_outcome_with_a_bucket_draws_the_unit_and_counts_in_usage() -> None:
    """Rated directly (not pending), the unit goes available -> drawn and usage counts 1."""
    tx = outcome_rated(take("b1", charge="0"), NOV, was_pending=False)

    assert net(tx) == {
        ("world", UNIT): -1,
        ("usage:2026-11:outcomes", UNIT): 1,
        ("bucket:b1:available", UNIT): -1,
        ("bucket:b1:drawn", UNIT): 1,
    }
    assert tx.kind is EntryKind.OUTCOME_RATED


def test_a_settling_pending_outcome_moves_its_charge_from_pending_to_usage() -> None:
    """Settled after a hold, the outcome and its 0.99 leave pending for usage of the month."""
    tx = outcome_rated(take(None), NOV, was_pending=True)

    assert net(tx) == {
        ("outcomes:pending", UNIT): -1,
        ("usage:2026-11:outcomes", UNIT): 1,
        ("charges:pending", "USD"): -990_000_000,
        ("usage:2026-11:charged", "USD"): 990_000_000,
    }


def test_a_settling_pending_outcome_with_a_bucket_moves_its_unit_from_held_to_drawn() -> None:
    """The held unit is drawn when the outcome settles."""
    tx = outcome_rated(take("b1", charge="0"), NOV, was_pending=True)

    assert net(tx) == {
        ("outcomes:pending", UNIT): -1,
        ("usage:2026-11:outcomes", UNIT): 1,
        ("bucket:b1:held", UNIT): -1,
        ("bucket:b1:drawn", UNIT): 1,
    }


def test_an_outcome_settles_in_the_month_of_settlement() -> None:
    """Settled at 00:00 UTC on 1 December, it counts in usage:2026-12."""
    tx = outcome_rated(take(None), datetime(2026, 12, 1, tzinfo=UTC), was_pending=True)

    assert set(net(tx)) >= {
        ("usage:2026-12:outcomes", UNIT),
        ("usage:2026-12:charged", "USD"),
    }


def test_a_released_outcome_gives_its_held_unit_back_to_available() -> None:
    """A pending outcome reversed returns its unit to b1 and un-counts the pending outcome."""
    tx = outcome_released(take("b1", charge="0"), NOV, bucket_expired=False)

    assert net(tx) == {
        ("outcomes:pending", UNIT): -1,
        ("world", UNIT): 1,
        ("bucket:b1:held", UNIT): -1,
        ("bucket:b1:available", UNIT): 1,
    }
    assert (tx.kind, tx.units, tx.amount) == (EntryKind.OUTCOME_RELEASED, -1, Money.zero("USD"))


def test_a_released_outcome_gives_a_unit_of_an_expired_bucket_to_expired() -> None:
    """When the bucket has expired meanwhile, the returned unit ends in bucket:<id>:expired."""
    tx = outcome_released(take("b1", charge="0"), NOV, bucket_expired=True)

    assert net(tx) == {
        ("outcomes:pending", UNIT): -1,
        ("world", UNIT): 1,
        ("bucket:b1:held", UNIT): -1,
        ("bucket:b1:expired", UNIT): 1,
    }


def test_a_released_billable_outcome_drops_its_pending_charge_and_charges_nothing() -> None:
    """The 0.99 leaves charges:pending; the entry's amount is zero."""
    tx = outcome_released(take(None), NOV, bucket_expired=False)

    assert net(tx) == {
        ("outcomes:pending", UNIT): -1,
        ("world", UNIT): 1,
        ("charges:pending", "USD"): -990_000_000,
        ("world", "USD"): 990_000_000,
    }
    assert tx.amount == Money.zero("USD")


def test_a_reversal_in_another_month_books_the_usage_of_that_month() -> None:
    """Rated on 30 November, reversed on 1 December: usage:2026-12 gives back 1 and 0.99."""
    rated = outcome_rated(take(None), datetime(2026, 11, 30, 23, 59, tzinfo=UTC), was_pending=False)
    reversed_ = outcome_reversed(
        take(None), datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC), bucket_expired=False
    )

    assert net(reversed_) == {
        ("usage:2026-12:outcomes", UNIT): -1,
        ("world", UNIT): 1,
        ("usage:2026-12:charged", "USD"): -990_000_000,
        ("world", "USD"): 990_000_000,
    }
    assert net(rated)[("usage:2026-11:charged", "USD")] == 990_000_000
    assert (reversed_.kind, reversed_.units, reversed_.amount) == (
        EntryKind.OUTCOME_REVERSED,
        -1,
        Money.of("-0.99", "USD"),
    )


def test_a_reversed_outcome_gives_its_drawn_unit_back_to_available() -> None:
    """A settled outcome covered by b1 returns its unit from drawn to available."""
    tx = outcome_reversed(take("b1", charge="0"), NOV, bucket_expired=False)

    assert net(tx) == {
        ("usage:2026-11:outcomes", UNIT): -1,
        ("world", UNIT): 1,
        ("bucket:b1:drawn", UNIT): -1,
        ("bucket:b1:available", UNIT): 1,
    }


def test_a_reversed_outcome_of_an_expired_bucket_gives_its_unit_to_expired() -> None:
    """The unit cannot be drawn again, so it leaves drawn for bucket:<id>:expired."""
    tx = outcome_reversed(take("b1", charge="0"), NOV, bucket_expired=True)

    assert net(tx) == {
        ("usage:2026-11:outcomes", UNIT): -1,
        ("world", UNIT): 1,
        ("bucket:b1:drawn", UNIT): -1,
        ("bucket:b1:expired", UNIT): 1,
    }


# ---- properties across an outcome's life ------------------------------------------------


@given(takes, instants)
def test_a_held_outcome_that_settles_ends_where_a_confirmed_one_does(
    outcome: OutcomeTake, at: datetime
) -> None:
    """Hold then settle nets exactly the balances of rating the outcome directly."""
    assert net(outcome_held(outcome, at), outcome_rated(outcome, at, was_pending=True)) == net(
        outcome_rated(outcome, at, was_pending=False)
    )


@given(takes, instants)
def test_a_released_outcome_leaves_no_trace_in_any_balance(
    outcome: OutcomeTake, at: datetime
) -> None:
    """Hold then release, the bucket still valid: every balance is back where it was."""
    assert net(outcome_held(outcome, at), outcome_released(outcome, at, bucket_expired=False)) == {}


@given(takes, instants)
def test_a_reversal_in_the_same_month_gives_back_exactly_what_the_outcome_took(
    outcome: OutcomeTake, at: datetime
) -> None:
    """Rate then reverse in one month: every balance, usage included, is back where it was."""
    rated = outcome_rated(outcome, at, was_pending=False)

    reversal = outcome_reversed(outcome, at, bucket_expired=False)

    assert net(rated, reversal) == {}


# ---- periods ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "period"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC), "2026-11"),
        (datetime(2026, 12, 1, tzinfo=UTC), "2026-12"),
        (datetime(999, 1, 1, tzinfo=UTC), "0999-01"),
    ],
)
def test_period_of_is_the_calendar_month_in_utc(at: datetime, period: str) -> None:
    """The month changes at 00:00 UTC on the 1st, written as YYYY-MM."""
    assert period_of(at) == period


@pytest.mark.parametrize(
    ("at", "period"),
    [
        (datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2026-11"),
        (datetime(2026, 11, 30, 20, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-12"),
    ],
)
def test_period_of_an_instant_written_in_another_offset_is_its_utc_month(
    at: datetime, period: str
) -> None:
    """00:30 on 1 December at +01:00 is still November in UTC (and the reverse at -05:00)."""
    assert period_of(at) == period
