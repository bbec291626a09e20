"""Forecasts at the pace of the last 28 days by day of week, on synthetic seasonal series.

Every case is set on Wednesday 2026-11-18: its 28 days before run from
Wednesday 2026-10-21 to Tuesday 2026-11-17 (four of each weekday), and what is
left of November is half of the 18th (at noon) and the 19th to the 30th:
Thu Fri Sat Sun Mon Tue Wed Thu Fri Sat Sun Mon.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from rating_service.domain.forecast import (
    Reserve,
    project_exhaustion,
    project_month,
    weekday_pace,
)

TODAY = datetime(2026, 11, 18, tzinfo=UTC)
NOON = TODAY + timedelta(hours=12)
FIRST = TODAY - timedelta(days=28)  # Wednesday 2026-10-21


def series(
    value_of_day: dict[int, int] | None = None, *, by_index: bool = False
) -> dict[datetime, int]:
    """The 28 days before TODAY, valued by weekday (Mon=0) or by position (0 = the oldest)."""
    days = {}
    for i in range(28):
        day = FIRST + timedelta(days=i)
        key = i if by_index else day.weekday()
        days[day] = (value_of_day or {}).get(key, 0)
    return days


WEEKLY = series({0: 10, 1: 10, 2: 10, 3: 10, 4: 10, 5: 2, 6: 2})
"""Weekdays 10 outcomes, weekends 2."""


def test_the_pace_of_a_weekly_pattern_is_each_weekdays_own_level() -> None:
    assert weekday_pace(WEEKLY, TODAY) == (10, 10, 10, 10, 10, 2, 2)


def test_a_weekly_pattern_projects_each_remaining_day_at_its_weekdays_level() -> None:
    """Half a Wednesday (5), then Thu Fri (20), Sat Sun (4), Mon-Fri (50), Sat Sun (4), Mon (10)."""
    assert project_month(100, WEEKLY, NOON) == 100 + 5 + 20 + 4 + 50 + 4 + 10


def test_a_ramp_projects_the_average_of_each_weekday_not_the_trend() -> None:
    """Day i of the 28 has i outcomes: a weekday's four values average its first one + 10.5
    (Wed 10.5, Thu 11.5, ... Tue 16.5). Ahead: half of Wed 10.5 = 5.25; Thu..Tue 84;
    Wed..Mon 78; 167.25 in all, rounded down."""
    ramp = series({i: i for i in range(28)}, by_index=True)
    assert weekday_pace(ramp, TODAY)[2] == 10.5  # Wednesday
    assert project_month(0, ramp, NOON) == 167


def test_a_spike_on_one_monday_weighs_only_on_the_mondays_ahead() -> None:
    """400 on one Monday is a Monday pace of 100; two Mondays (23rd, 30th) remain."""
    spike = series()
    spike[datetime(2026, 11, 2, tzinfo=UTC)] = 400
    assert project_month(7, spike, NOON) == 7 + 200


def test_money_projects_the_same_way_rounded_down_to_the_nano() -> None:
    """0.99 a weekday and a Saturday that brought 1 nano once: its pace is a quarter nano a
    Saturday, and the two Saturdays ahead add half a nano, dropped. Ahead: half a Wednesday
    and 8 weekdays."""
    nanos = {day: (990_000_000 if day.weekday() < 5 else 0) for day in WEEKLY}
    nanos[datetime(2026, 11, 14, tzinfo=UTC)] = 1
    assert project_month(0, nanos, NOON) == 495_000_000 + 990_000_000 * 8


def test_nothing_in_the_last_28_days_projects_the_month_as_it_stands() -> None:
    assert project_month(42, {}, NOON) == 42


def test_a_bucket_at_a_steady_pace_runs_out_after_its_units_worth_of_days() -> None:
    steady = series(dict.fromkeys(range(7), 10))
    reserve = Reserve("b", 100, TODAY - timedelta(days=1), TODAY + timedelta(days=365))
    assert project_exhaustion([reserve], weekday_pace(steady, TODAY), NOON) == {
        "b": NOON + timedelta(days=10)
    }


def test_buckets_run_out_one_after_the_other_in_burn_down_order_at_the_weekly_pace() -> None:
    """From Wednesday midnight: the first (15) lasts Wed (10) and half of Thu (5); the second
    (50) then takes Thu's other 5, Fri 10, Sat 2, Sun 2, Mon 10, Tue 10, Wed 10 (49 by
    Thursday the 26th), and its last unit a tenth of that day (2 h 24 min) in."""
    year = TODAY + timedelta(days=365)
    first = Reserve("first", 15, TODAY - timedelta(days=1), year)
    second = Reserve("second", 50, TODAY - timedelta(days=1), year)
    assert project_exhaustion([first, second], weekday_pace(WEEKLY, TODAY), TODAY) == {
        "first": datetime(2026, 11, 19, 12, tzinfo=UTC),
        "second": datetime(2026, 11, 26, 2, 24, tzinfo=UTC),
    }


def test_a_bucket_that_expires_first_is_absent_and_the_next_takes_over_at_its_expiry() -> None:
    """`short` (100 units) draws Wed-Fri (30) and expires at Friday's end: absent. `long` (40)
    draws from then: Sat 2, Sun 2, Mon-Wed 30 (34 by Thursday the 26th), and its last 6
    units in 0.6 of that day (14 h 24 min)."""
    short = Reserve("short", 100, TODAY - timedelta(days=1), datetime(2026, 11, 21, tzinfo=UTC))
    long = Reserve("long", 40, TODAY - timedelta(days=1), TODAY + timedelta(days=365))
    found = project_exhaustion([short, long], weekday_pace(WEEKLY, TODAY), TODAY)
    assert found == {"long": datetime(2026, 11, 26, 14, 24, tzinfo=UTC)}


def test_a_bucket_not_yet_valid_starts_drawing_at_its_valid_from() -> None:
    steady = series(dict.fromkeys(range(7), 10))
    later = Reserve("later", 5, TODAY + timedelta(days=2), TODAY + timedelta(days=30))
    assert project_exhaustion([later], weekday_pace(steady, TODAY), TODAY) == {
        "later": TODAY + timedelta(days=2, hours=12)
    }


def test_no_pace_or_nothing_left_projects_no_exhaustion() -> None:
    year = TODAY + timedelta(days=365)
    assert project_exhaustion([Reserve("b", 5, TODAY, year)], weekday_pace({}, TODAY), NOON) == {}
    steady = weekday_pace(series(dict.fromkeys(range(7), 10)), TODAY)
    assert project_exhaustion([Reserve("b", 0, TODAY, year)], steady, NOON) == {}


def _day_by_day(so_far: int, daily: dict[datetime, int], now: datetime) -> int:
    """The projection as its definition reads: each of the 28 days looked up, each day ahead
    added at its weekday's pace."""
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    sums = [0] * 7
    for back in range(1, 29):
        day = today - timedelta(days=back)
        sums[day.weekday()] += daily.get(day, 0)
    pace = [Fraction(s, 4) for s in sums]
    ahead = pace[today.weekday()] * (
        1 - Fraction((now - today) // timedelta(microseconds=1), 86_400_000_000)
    )
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    day = today + timedelta(days=1)
    while day < end:
        ahead += pace[day.weekday()]
        day += timedelta(days=1)
    return so_far + math.floor(ahead)


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    amounts=st.dictionaries(
        st.tuples(st.integers(min_value=-40, max_value=5), st.sampled_from([0, 0, 0, 7])),
        st.integers(min_value=-(10**15), max_value=10**15),
        max_size=45,
    ),
    so_far=st.integers(min_value=0, max_value=10**15),
)
def test_the_projection_equals_adding_the_days_ahead_one_by_one(
    now: datetime, amounts: dict[tuple[int, int], int], so_far: int
) -> None:
    """Days before, in, and after the 28-day window, and the month's last days, count as
    their definition says; an amount keyed off a day's first instant is no day's."""
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    daily = {
        today + timedelta(days=offset, hours=hour): amount
        for (offset, hour), amount in amounts.items()
    }

    assert project_month(so_far, daily, now) == _day_by_day(so_far, daily, now)
