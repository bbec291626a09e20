"""The gateway's request-rate limit (rating_service.ratelimit.TokenBucket).

Time and sleeping are injected: the tests check the waits the bucket asks
for, with no real waiting and no timing assertions.
"""

from __future__ import annotations

import pytest

from rating_service.ratelimit import TokenBucket


class FakeTime:
    """A clock that moves only when a caller sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


def bucket(fake: FakeTime, rate: float = 10.0, burst: int = 2) -> TokenBucket:
    return TokenBucket(rate, burst, clock=fake, sleep=fake.sleep)


async def test_a_burst_passes_at_once_then_one_call_per_interval() -> None:
    """``burst`` calls need no wait; each later call waits 1/rate after the previous one."""
    fake = FakeTime()
    limiter = bucket(fake)

    for _ in range(5):
        await limiter.acquire()

    assert fake.sleeps == [0.1, 0.1, 0.1]
    assert fake.now == pytest.approx(1_000.3)


async def test_concurrent_callers_are_booked_one_interval_apart_in_arrival_order() -> None:
    """Callers that arrive together reserve consecutive slots: waits of 0, 0, 0.1, 0.2, 0.3 s."""
    fake = FakeTime()
    limiter = bucket(fake)

    waits = [limiter.reserve() for _ in range(5)]

    assert [round(w, 9) for w in waits] == [0.0, 0.0, 0.1, 0.2, 0.3]


async def test_idle_time_refills_the_bucket_up_to_the_burst_only() -> None:
    """A minute of silence saves ``burst`` tokens, not 600."""
    fake = FakeTime()
    limiter = bucket(fake)
    for _ in range(2):
        await limiter.acquire()
    fake.now += 60

    waits = [limiter.reserve() for _ in range(3)]

    assert [round(w, 9) for w in waits] == [0.0, 0.0, 0.1]


async def test_the_average_rate_over_many_calls_is_the_configured_one() -> None:
    """100 calls at 20/s with a burst of 2 take (100 - 2) / 20 seconds in all."""
    fake = FakeTime()
    limiter = bucket(fake, rate=20.0, burst=2)

    for _ in range(100):
        await limiter.acquire()

    assert sum(fake.sleeps) == pytest.approx(98 / 20)
    assert fake.now == pytest.approx(1_000 + 98 / 20)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (5.0, 0)])
def test_a_rate_that_is_not_positive_or_an_empty_burst_is_refused(rate: float, burst: int) -> None:
    """Such a bucket would never let a call through."""
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(rate, burst)
