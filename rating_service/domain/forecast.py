"""Forecasts at the pace of the last 28 days, weighted by day of week (pure, exact).

Support traffic has a weekly rhythm: a Monday is not a Sunday. So the pace
of a day of the week is the average of the four days of that weekday among
the 28 whole UTC days before today, and a projection adds, for each day still
ahead, its own weekday's pace (for today, the part of it not yet elapsed).
Arithmetic is in fractions; results are rounded down (to an outcome, a nano,
a microsecond) only at the end, so a test can work the answer out by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from rating_service.domain.billing import day_of, month_start, next_month

WINDOW_DAYS = 28
DAY = timedelta(days=1)
_DAY_US = 86_400_000_000
HORIZON = timedelta(days=3653)
"""How far a bucket's exhaustion is looked for: ten years (a bucket lasting longer is absent)."""

Pace = tuple[Fraction, ...]
"""Per day of the week (Monday = 0), the average amount a day."""


def weekday_pace(daily: Mapping[datetime, int], today: datetime) -> Pace:
    """The pace of each day of the week over the 28 whole days before ``today``.

    ``daily``: amounts by the first instant of their UTC day (missing days are 0).
    Read once through ``daily`` rather than looked up a day at a time: a balance
    asks for three paces, and day arithmetic on aware datetimes is slow.
    """
    sums = [0] * 7
    for day, amount in daily.items():
        back, rest = divmod(today - day, DAY)
        if 1 <= back <= WINDOW_DAYS and not rest:
            sums[day.weekday()] += amount
    weeks = WINDOW_DAYS // 7
    return tuple(Fraction(s, weeks) for s in sums)


def _elapsed(now: datetime, day: datetime) -> Fraction:
    """The part of ``day`` (its first instant) that has passed at ``now``."""
    return Fraction((now - day) // timedelta(microseconds=1), _DAY_US)


def project_month(so_far: int, daily: Mapping[datetime, int], now: datetime) -> int:
    """``so_far`` (the month to ``now``) plus what the rest of the month adds at the pace.

    Rounded down. Works for counts and for money (nanos) alike. The whole days
    ahead are counted per day of the week and each count weighted by its pace,
    the same sum as adding them day by day, in seven products.
    """
    today = day_of(now)
    pace = weekday_pace(daily, today)
    ahead = pace[today.weekday()] * (1 - _elapsed(now, today))
    tomorrow = today + DAY
    weeks, extra = divmod(max((next_month(month_start(now)) - tomorrow) // DAY, 0), 7)
    first = tomorrow.weekday()
    for weekday in range(7):
        days = weeks + ((weekday - first) % 7 < extra)
        ahead += days * pace[weekday]
    return so_far + math.floor(ahead)


@dataclass(frozen=True)
class Reserve:
    """A bucket as a projection needs it; a sequence of them is in burn-down order."""

    bucket_id: str
    remaining: int
    valid_from: datetime
    valid_until: datetime


def project_exhaustion(
    reserves: Sequence[Reserve], pace: Pace, now: datetime
) -> dict[str, datetime]:
    """When each bucket of one outcome type runs out, drawn at ``pace`` in burn-down order.

    Demand is spread evenly over each day; at any instant it draws from the
    first bucket (in the order given) that is valid then and has units left.
    A bucket absent from the answer does not run out before its ``valid_until``
    (or within ``HORIZON``), or had nothing left to begin with.
    """
    left = {r.bucket_id: Fraction(r.remaining) for r in reserves}
    live = [r for r in reserves if r.remaining > 0 and r.valid_until > now]
    if not live or max(pace) <= 0:
        return {}
    horizon = min(max(r.valid_until for r in live), now + HORIZON)
    edges = sorted({r.valid_from for r in live} | {r.valid_until for r in live})
    found: dict[str, datetime] = {}
    t = now
    while t < horizon and len(found) < len(live):
        day = day_of(t)
        end = min([day + DAY, horizon, *(e for e in edges if e > t)])
        rate = max(pace[day.weekday()], Fraction(0)) / _DAY_US  # per microsecond
        span = (end - t) // timedelta(microseconds=1)
        demand = rate * span
        drawn = Fraction(0)
        for r in live:
            if demand <= drawn:
                break
            if not (r.valid_from <= t < r.valid_until) or left[r.bucket_id] <= 0:
                continue
            take = min(left[r.bucket_id], demand - drawn)
            drawn += take
            left[r.bucket_id] -= take
            if left[r.bucket_id] == 0:
                found[r.bucket_id] = t + timedelta(microseconds=math.floor(drawn / rate))
        t = end
    return found
