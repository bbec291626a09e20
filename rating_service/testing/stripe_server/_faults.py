"""Faults on demand: scripted (the next N matching requests) or seeded-random.

Kinds and what the client sees:

============================  ===========================================================
``rate_limited``              429 ``rate_limit``, ``Stripe-Should-Retry: true`` (the SDK
                              retries it when ``max_network_retries`` allows)
``rate_limited_no_retry``     429 ``rate_limit``, ``Stripe-Should-Retry: false``
``server_error``              500 ``api_error`` (no ``Stripe-Should-Retry``: the SDK
                              retries 5xx)
``slow``                      the normal answer, after ``delay`` seconds (real time)
``timeout``                   no answer at all until the client gives up (or the server
                              stops)
``connection_reset``          the TCP connection is reset without a response
``session_expired``           401 ``billing_meter_event_session_expired`` (v2 shape);
                              matches only the meter event stream unless a path is given
============================  ===========================================================

**Applied or not.** By default a fault strikes *before* the operation runs:
nothing changes and no idempotency key is saved, so a retry runs it for the
first time. With ``after_apply=True`` (``server_error``, ``timeout``,
``connection_reset`` and ``slow`` only) the operation runs first: the state
changes and its real response is saved under the idempotency key, and then
the answer is lost (replaced by the 500, or never sent). A retry with the
same ``Idempotency-Key`` replays the real response; a retry with a new key
runs the operation again (for a meter event: a duplicate identifier). This
is "the request succeeded but the answer was lost". (Stripe says it also
saves and replays a 500 that happens mid-operation; the server models the
lost answer rather than a saved 500.)

Scripted faults fire in the order they were injected, each on the next
``count`` requests that match it; random faults (``set_random``) draw from
their own seeded generator, once per request that no scripted fault took,
so a given seed and request sequence always gives the same faults.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

STREAM_PATH = "/v2/billing/meter_event_stream"
DEFAULT_DELAY = 1.0


class FaultKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    RATE_LIMITED_NO_RETRY = "rate_limited_no_retry"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    TIMEOUT = "timeout"
    CONNECTION_RESET = "connection_reset"
    SESSION_EXPIRED = "session_expired"


AFTER_APPLY_KINDS = frozenset(
    {FaultKind.SERVER_ERROR, FaultKind.TIMEOUT, FaultKind.CONNECTION_RESET, FaultKind.SLOW}
)


@dataclass(frozen=True)
class Fault:
    """A fault chosen for one request."""

    kind: FaultKind
    after_apply: bool = False
    delay: float = DEFAULT_DELAY


@dataclass
class _Rule:
    fault: Fault
    remaining: int
    path: str | None
    method: str | None

    def matches(self, method: str, path: str, template: str) -> bool:
        return self.path in (None, path, template) and self.method in (None, method)


class Faults:
    """The fault script of one server; tests drive it through ``server.faults``."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._random: tuple[random.Random, float, tuple[Fault, ...], str | None] | None = None
        self.injected: Counter[FaultKind] = Counter()
        """How many requests each kind of fault has struck so far."""

    def inject(
        self,
        kind: FaultKind | str,
        *,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        after_apply: bool = False,
        delay: float = DEFAULT_DELAY,
    ) -> None:
        """Strike the next ``count`` requests matching ``path`` (the request path or
        the spec's template, e.g. ``/v1/billing/meters/{id}``) and ``method``."""
        fault = _fault(kind, after_apply, delay)
        if count < 1:
            raise ValueError("count must be at least 1")
        if path is None and fault.kind is FaultKind.SESSION_EXPIRED:
            path = STREAM_PATH
        self._rules.append(_Rule(fault, count, path, method and method.upper()))

    def set_random(
        self,
        rate: float,
        kinds: Iterable[FaultKind | str],
        *,
        seed: int,
        path: str | None = None,
        after_apply: bool = False,
        delay: float = DEFAULT_DELAY,
    ) -> None:
        """Strike each matching request with probability ``rate``, a kind drawn from ``kinds``."""
        faults = tuple(_fault(kind, after_apply, delay) for kind in kinds)
        if not 0 <= rate <= 1 or not faults:
            raise ValueError("rate must be in [0, 1] and kinds not empty")
        self._random = (random.Random(seed), rate, faults, path)

    def clear(self) -> None:
        """No more faults (the counts of those already injected stay)."""
        self._rules.clear()
        self._random = None

    def take(self, method: str, path: str, template: str) -> Fault | None:
        """The fault for this request, if any (called once per routed request)."""
        for rule in self._rules:
            if rule.matches(method, path, template):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return self._count(rule.fault)
        if self._random is not None:
            generator, rate, faults, only = self._random
            if only in (None, path, template) and generator.random() < rate:
                return self._count(generator.choice(faults))
        return None

    def _count(self, fault: Fault) -> Fault:
        self.injected[fault.kind] += 1
        return fault


def _fault(kind: FaultKind | str, after_apply: bool, delay: float) -> Fault:
    fault_kind = FaultKind(kind)
    if after_apply and fault_kind not in AFTER_APPLY_KINDS:
        raise ValueError(f"{fault_kind} cannot strike after the operation is applied")
    if delay < 0:
        raise ValueError("delay must not be negative")
    return Fault(fault_kind, after_apply, delay)
