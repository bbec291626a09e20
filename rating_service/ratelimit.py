"""A token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

Two users. The reporter stays under Stripe's rate limits (Stripe answers 429 past
about 25 requests a second in a sandbox, and backing off then costs more than never
getting there): every request the gateway sends first ``acquire``s a token. The API
limits each caller of the tokens file to its ``rate=``: a call ``try_take``s a
token, and one that finds none is refused with the wait until the next.

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

    def try_take(self) -> float:
        """Take a token if one is there (0.0); else take nothing and say how many seconds
        until one is (a refused caller books nothing, so refusals never delay the others)."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    def reserve(self) -> float:
        """Take a token, or book the next free one: how many seconds until it is due (0: now)."""
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
