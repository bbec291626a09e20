"""The service's one clock: every "now" the service and the reporter use comes from here.

Time is an input: tests and benchmarks pass their own ``Clock``; the domain
never reads one and takes ``now`` as an argument instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
"""Answers the current instant, timezone-aware, in UTC."""


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


STEP_BACK_ABSORBED = timedelta(seconds=1)
"""How far back the clock may step (being corrected) before calls wait for it."""


class ClockBehind(Exception):
    """The clock reads earlier than an instant the service has already used: the call did
    nothing, and may be retried once the clock has caught up."""


class MonotonicClock:
    """``clock``, never answering an instant earlier than one it has answered, or than
    ``floor`` (the latest instant the ledger holds, when the service starts).

    Every instant the ledger records must come after those it holds: an entry recorded
    before the one ahead of it in its chain, a charge or a reversal counted in a month
    already left, would be a wrong success. A step back of up to ``absorbed`` answers
    the latest instant again; a longer one raises ``ClockBehind`` (UNAVAILABLE) until
    the clock has caught up, without a restart. One process's instants only: replicas
    sharing a ledger must keep their clocks within ``absorbed`` of one another.
    """

    def __init__(
        self,
        clock: Clock = system_clock,
        *,
        floor: datetime | None = None,
        absorbed: timedelta = STEP_BACK_ABSORBED,
    ) -> None:
        self._clock = clock
        self._latest = floor or datetime.min.replace(tzinfo=UTC)
        self._absorbed = absorbed
        self._behind = False

    def __call__(self) -> datetime:
        now = self._clock()
        if now >= self._latest:
            if self._behind:
                log.warning("the clock has caught up with %s", self._latest.isoformat())
                self._behind = False
            self._latest = now
            return now
        if self._latest - now <= self._absorbed:
            return self._latest
        if not self._behind:
            log.warning(
                "the clock stepped back to %s, %s before %s: calls that need the time answer "
                "UNAVAILABLE until it catches up",
                now.isoformat(),
                self._latest - now,
                self._latest.isoformat(),
            )
            self._behind = True
        raise ClockBehind(
            f"the server's clock reads {now.isoformat()}, earlier than {self._latest.isoformat()}"
            " which the ledger has already used; retry once it has caught up"
        )
