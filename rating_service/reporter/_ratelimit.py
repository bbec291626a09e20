"""A request-rate limit on our side, so the reporter stays under Stripe's.

Stripe answers 429 past its rate limits (about 25 requests a second in a
sandbox), and the reporter would then back off; it is cheaper to never get
there. Every request the gateway sends first takes a token from this bucket:
``rate`` tokens a second, at most ``burst`` saved up.

Callers that find no token *reserve* the next one and sleep until it is due,
so waiting callers are served in arrival order without a lock, and the
bucket's debt says how far ahead it is booked. A caller cancelled while it
waits forfeits its slot (the rate only gets lower). Time and sleeping are
injected so that tests check the spacing without real waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """``rate`` acquisitions a second on average, ``burst`` at once."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError(f"rate must be positive and burst at least 1 (got {rate}, {burst})")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()

    async def acquire(self) -> None:
        """Return when the caller may send one request."""
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)

    def reserve(self) -> float:
        """Take a token, or book the next free one: how many seconds until it is due (0: now)."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
