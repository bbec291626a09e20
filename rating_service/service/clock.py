"""The service's one clock: every "now" the service and the reporter use comes from here.

Time is an input: tests and benchmarks pass their own ``Clock``; the domain
never reads one and takes ``now`` as an argument instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Answers the current instant, timezone-aware, in UTC."""


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)
