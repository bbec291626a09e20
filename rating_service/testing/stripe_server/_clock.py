"""A clock a test can move, for the server's time windows.

The server reads the time only through the ``clock`` it is given (Unix
seconds), so identifier dedup (24 h), cancellation (24 h), the timestamp
window (35 days back, 5 minutes ahead), session expiry (15 min),
idempotency keys (24 h) and the request-rate bucket all move with it. Real
waits (the meter event latency, the ``slow`` fault) are not on this clock.
"""

from __future__ import annotations

START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: a fixed, minute-aligned default start."""


class ManualClock:
    """Time that stands still until a test moves it."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.now += seconds
