"""Every request to Stripe goes one way: named by its endpoint, rate-limited, errors sorted.

The gateway names the endpoint of each request itself (``Endpoint``), so the
metric's and the trace's ``endpoint`` label has as few values as Stripe has
endpoints (never an id), whether the request is an SDK method or a page of a
list. SDK and network errors become ``TransientStripeError`` or
``PermanentStripeError`` (``classify_stripe_error``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial
from typing import TypeVar

import stripe
from prometheus_client import Counter

from rating_service.ratelimit import TokenBucket
from rating_service.tracing import client_span

from ._stripe_errors import DUPLICATE_METER_EVENT, NETWORK_ERRORS, classify_stripe_error
from .gateway import PermanentStripeError, TransientStripeError

_Item = TypeVar("_Item", bound=stripe.StripeObject)
_Result = TypeVar("_Result")

CALLS = Counter(
    "rating_stripe_calls",
    "Requests sent to Stripe, by endpoint and outcome (ok, duplicate: an identifier Stripe "
    "already had, transient: retried later, permanent)",
    ["endpoint", "outcome"],
)


class Endpoint(StrEnum):
    """The Stripe endpoints the gateway calls, as labelled in metrics and traces."""

    CUSTOMER_RETRIEVE = "Customer.retrieve"
    METER_EVENT_STREAM_CREATE = "MeterEventStream.create"
    METER_EVENT_SESSION_CREATE = "MeterEventSession.create"
    METER_EVENT_ADJUSTMENT_CREATE = "MeterEventAdjustment.create"
    CREDIT_GRANT_CREATE = "CreditGrant.create"
    CREDIT_GRANT_VOID = "CreditGrant.void_grant"
    CREDIT_GRANT_RETRIEVE = "CreditGrant.retrieve"
    CREDIT_GRANT_LIST = "CreditGrant.list"
    CREDIT_BALANCE_SUMMARY_RETRIEVE = "CreditBalanceSummary.retrieve"
    METER_LIST = "Meter.list"
    METER_CREATE = "Meter.create"
    METER_EVENT_SUMMARY_LIST = "MeterEventSummary.list"


class AlreadyDelivered(PermanentStripeError):
    """A duplicate meter event identifier: success when sending meter events, a surprise elsewhere."""


class StripeCalls:
    """One rate limit in front of every request (session renewals and list pages included)."""

    def __init__(self, requests_per_second: float) -> None:
        self._limiter = TokenBucket(requests_per_second, max(1, round(requests_per_second / 10)))

    async def call(
        self, endpoint: Endpoint, action: str, request: Callable[[], Awaitable[_Result]]
    ) -> _Result:
        """Send one request through the rate limit; SDK and network errors become gateway errors."""
        await self._limiter.acquire()
        try:
            with client_span(f"stripe {endpoint}", {"stripe.endpoint": str(endpoint)}):
                result = await request()
        except (stripe.StripeError, *NETWORK_ERRORS) as error:
            verdict = classify_stripe_error(error, action=action)
            CALLS.labels(endpoint, _outcome(verdict)).inc()
            if verdict is None:
                raise AlreadyDelivered(
                    f"{action}: Stripe has this meter event already",
                    code=DUPLICATE_METER_EVENT,
                    status=getattr(error, "http_status", None) or 0,
                ) from error
            raise verdict from error
        CALLS.labels(endpoint, "ok").inc()
        return result

    async def all_pages(
        self,
        endpoint: Endpoint,
        action: str,
        fetch: Callable[[str | None], Awaitable[stripe.ListObject[_Item]]],
    ) -> list[_Item]:
        """Every item of a Stripe list, one request per page (``starting_after`` the last id)."""
        items: list[_Item] = []
        after: str | None = None
        while True:
            page = await self.call(endpoint, action, partial(fetch, after))
            items.extend(page.data)
            if not page.has_more or not page.data:
                return items
            after = str(page.data[-1]["id"])


def _outcome(verdict: TransientStripeError | PermanentStripeError | None) -> str:
    if verdict is None:
        return "duplicate"
    return "transient" if isinstance(verdict, TransientStripeError) else "permanent"
