"""The service's clock never goes back (rating_service.service.clock.MonotonicClock).

A step back of up to a second answers the latest instant again; a longer one raises
ClockBehind, which callers hear as UNAVAILABLE/CLOCK_BEHIND, until the clock catches up.
The end-to-end fault suite (tests/e2e/test_faults_clock.py) runs it in a real service.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2

from rating_service.api.errors import to_status
from rating_service.service.clock import ClockBehind, MonotonicClock

T = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


class Hands:
    """A clock a test sets."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_a_clock_going_forward_is_answered_as_it_reads() -> None:
    hands = Hands(T)
    clock = MonotonicClock(hands)

    first = clock()
    hands.at = T + timedelta(seconds=5)

    assert (first, clock()) == (T, T + timedelta(seconds=5))


def test_a_step_back_within_a_second_answers_the_latest_instant_again() -> None:
    hands = Hands(T)
    clock = MonotonicClock(hands)
    clock()

    hands.at = T - timedelta(milliseconds=999)

    assert clock() == T


def test_a_longer_step_back_raises_until_the_clock_has_caught_up() -> None:
    hands = Hands(T)
    clock = MonotonicClock(hands)
    clock()

    hands.at = T - timedelta(hours=1)
    with pytest.raises(ClockBehind):
        clock()
    hands.at = T - timedelta(seconds=1)  # within a second of the latest: absorbed again

    assert clock() == T


def test_the_floor_counts_as_an_instant_already_used() -> None:
    """A service starts with the ledger's latest instant as its floor."""
    clock = MonotonicClock(Hands(T - timedelta(minutes=5)), floor=T)

    with pytest.raises(ClockBehind):
        clock()


def test_callers_hear_unavailable_clock_behind() -> None:
    status = to_status(ClockBehind("behind"))
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)

    assert (status.code, info.reason) == (grpc.StatusCode.UNAVAILABLE.value[0], "CLOCK_BEHIND")
