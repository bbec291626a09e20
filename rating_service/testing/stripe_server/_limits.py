"""The two rate rules: a request-rate bucket, and one meter event call at a time.

- **Request rate** (off by default): a token bucket over the server clock,
  ``rate`` tokens a second up to ``burst``. Stripe's sandbox allows about
  25 operations a second. Past it: 429 ``rate_limit``.
- **Concurrency**: at most one meter event request in flight per
  (customer, event name), as Stripe allows one concurrent call per customer
  per meter. A second one overlapping it: 429 ``rate_limit`` (v1) or
  409 ``too_many_concurrent_requests`` (v2).

Neither answer carries ``Stripe-Should-Retry``: Stripe does not ask clients
to retry real rate limits (only lock timeouts), so the SDK raises
``RateLimitError`` at once, even with ``max_network_retries``, and backing
off is the caller's job. To test the SDK's own retries of a 429, inject the
``rate_limited`` fault, which sends ``Stripe-Should-Retry: true``.
"""

from __future__ import annotations


class TokenBucket:
    """``rate`` requests a second on average, ``burst`` at once; time is passed in."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class InFlight:
    """Keys with a request in progress."""

    def __init__(self) -> None:
        self._busy: set[tuple[str, str]] = set()

    def acquire(self, key: tuple[str, str]) -> bool:
        if key in self._busy:
            return False
        self._busy.add(key)
        return True

    def release(self, key: tuple[str, str]) -> None:
        self._busy.discard(key)
