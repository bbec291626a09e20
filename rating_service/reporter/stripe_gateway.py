"""The reporter's Gateway over the official ``stripe`` SDK (async methods, aiohttp transport).

Why it is built this way:

- **No retries in the SDK** (``max_network_retries=0``): the reporter backs
  off and retries forever on ``TransientStripeError``; SDK retries underneath
  would multiply waits and hide faults from its metrics.
- **aiohttp transport** (``stripe.AIOHTTPClient``): the SDK's default async
  transport (httpx) emits a DeprecationWarning on every POST. (aiohttp
  itself sends a GET again, once, when a kept-alive connection turns out to
  be closed; GETs are safe to repeat.)
- **One request-rate limit** (``rating_service.ratelimit.TokenBucket``) in front of every
  request, session renewals and list pages included, so the reporter stays
  under Stripe's limit (about 25 requests a second in a sandbox) instead of
  collecting 429s; each request names its endpoint for the metrics
  (``_stripe_calls``).
- **Meter events go through the v2 stream** (up to 100 events a request,
  Stripe's high-throughput path). It is authenticated by a meter event
  session token, valid 15 minutes, renewed when less than a minute is left
  and once more when Stripe answers 401 ``billing_meter_event_session_expired``
  (then the same events are sent again: identifiers make that safe). The
  stream validates events *asynchronously*: an unknown customer or a bad
  value is not an error here but an error report later, which is why the
  reporter checks customers with :meth:`ensure_customer`, the gateway refuses
  events Stripe would drop (``_stripe_wire``), and reconciliation compares totals.
- **A bucket gets one credit grant per version, for ever**: before creating a
  grant the gateway looks for one whose metadata names the same rating
  customer, bucket and ``grant_version`` (a grant without it is version 1),
  because Stripe's idempotency keys only last 24 hours. A manual draw or a
  void makes a new version (``domain.grants``): Stripe cannot lower a grant. (Two
  concurrent calls for the same bucket could still both create one; the
  reporter handles a customer's work in order.)
- **Lists are paged by hand**, not with ``auto_paging_iter``, so that each
  page goes through the rate limit and the error translation.
- **Every failure is a gateway error**: SDK and network errors are sorted by
  :func:`classify_stripe_error` into ``TransientStripeError`` and
  ``PermanentStripeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial
from typing import TYPE_CHECKING

import stripe

from rating_service.service.clock import Clock, system_clock

from . import _stripe_wire as wire
from ._meter_event_stream import MeterEventStream
from ._stripe_calls import Endpoint, StripeCalls
from ._stripe_errors import (
    ALREADY_CANCELLED,
    CANCEL_REFUSED,
    classify_stripe_error,
)
from .gateway import (
    CancelAnswer,
    CreditGrantSpec,
    CreditGrantView,
    Gateway,
    MeterEvent,
    PermanentStripeError,
)

if TYPE_CHECKING:
    # The SDK does not export its base-address type from the package.
    from stripe._base_address import BaseAddresses
    from stripe.params.billing import (
        CreditGrantListParams,
        MeterEventSummaryListParams,
        MeterListParams,
    )

__all__ = ["StripeGateway", "classify_stripe_error"]

PAGE_SIZE = 100
"""Objects per list page (Stripe's maximum)."""


class StripeGateway:
    """``Gateway`` for real Stripe (or the Stripe test server), one SDK client, one rate limit."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None,
        meter_events_base: str | None,
        requests_per_second: float = 20.0,
        timeout: float = 30.0,
        clock: Clock = system_clock,
    ) -> None:
        """
        Args:
            api_key: a secret (``sk_``) or restricted (``rk_``) key.
            api_base: Stripe's API address (``https://api.stripe.com``); None for the SDK's.
            meter_events_base: the meter event stream's address
                (``https://meter-events.stripe.com``); None for the SDK's.
            requests_per_second: the most requests a second to send, on average (the
                bucket also allows a burst of a tenth of that, at least 1).
            timeout: seconds per request before it counts as a (transient) failure.
            clock: the time, timezone-aware; decides when a session token is renewed.
        """
        if not api_key:
            raise ValueError("a Stripe API key is required")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout}")
        addresses: BaseAddresses = {}
        if api_base is not None:
            addresses["api"] = api_base
        if meter_events_base is not None:
            addresses["meter_events"] = meter_events_base
        self._http_client = stripe.AIOHTTPClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=addresses,
            max_network_retries=0,
            http_client=self._http_client,
        )
        self._calls = StripeCalls(requests_per_second)
        self._stream = MeterEventStream(self._client, self._calls, clock)

    # Customers

    async def ensure_customer(self, stripe_customer_id: str) -> None:
        """Raises PermanentStripeError when Stripe does not know the customer (or it is deleted)."""
        try:
            customer = await self._calls.call(
                Endpoint.CUSTOMER_RETRIEVE,
                f"retrieving customer {stripe_customer_id}",
                partial(self._client.v1.customers.retrieve_async, stripe_customer_id),
            )
        except PermanentStripeError as error:
            if error.status == 404 or error.code == "resource_missing":
                raise PermanentStripeError(
                    f"Stripe has no customer {stripe_customer_id}",
                    code=error.code,
                    status=error.status,
                ) from error
            raise
        if getattr(customer, "deleted", False):
            raise PermanentStripeError(f"Stripe customer {stripe_customer_id} is deleted")

    # Meter events

    async def send_meter_events(self, events: Sequence[MeterEvent]) -> None:
        """1 to 100 events in one stream request; identifiers already delivered are fine
        (``MeterEventStream.send``)."""
        await self._stream.send(events)

    async def cancel_meter_event(self, event_name: str, identifier: str) -> CancelAnswer:
        """Cancel one meter event (``POST /v2/billing/meter_event_adjustments``, ``type=cancel``).

        CANCELLED also when Stripe had it cancelled already (a retry after a
        lost answer: the idempotency key replays the first answer within 24
        hours, and past them Stripe's refusal says "already been canceled", an
        assumption, see the test server). TOO_LATE when Stripe refuses it as
        received 24 hours ago or more; NOT_FOUND when it has no such event.
        """
        try:
            await self._calls.call(
                Endpoint.METER_EVENT_ADJUSTMENT_CREATE,
                f"cancelling meter event {identifier}",
                partial(
                    self._client.v2.billing.meter_event_adjustments.create_async,
                    {
                        "event_name": event_name,
                        "type": "cancel",
                        "cancel": {"identifier": identifier},
                    },
                    {"idempotency_key": f"cancel-meter-event:{identifier}"},
                ),
            )
        except PermanentStripeError as error:
            # Stripe names the missing event in a parameter (400); a 404 means the same.
            if error.code == "resource_missing" and error.status in (400, 404):
                return CancelAnswer.NOT_FOUND
            if error.status != 400:
                raise
            if ALREADY_CANCELLED in str(error):
                return CancelAnswer.CANCELLED
            if error.code == CANCEL_REFUSED:
                return CancelAnswer.TOO_LATE
            raise
        return CancelAnswer.CANCELLED

    # Credit grants

    async def create_credit_grant(self, grant: CreditGrantSpec) -> str:
        """The grant's id: the one already made for this bucket (or owed-back credit), or a new one."""
        keys = wire.grant_keys(grant)
        for existing in await self._grants(grant.stripe_customer_id):
            if wire.is_grant_for(existing, keys):
                return existing.id
        created = await self._calls.call(
            Endpoint.CREDIT_GRANT_CREATE,
            f"creating a credit grant for {grant.stripe_customer_id} ("
            + (f"bucket {keys['bucket_id']}" if "bucket_id" in keys else keys["owed_back"])
            + ")",
            partial(
                self._client.v1.billing.credit_grants.create_async,
                wire.grant_params(grant),
                {"idempotency_key": grant.idempotency_key},
            ),
        )
        return created.id

    async def void_credit_grant(self, grant_id: str) -> None:
        """Void the grant; one already voided (an earlier answer lost) counts as done."""
        try:
            await self._calls.call(
                Endpoint.CREDIT_GRANT_VOID,
                f"voiding credit grant {grant_id}",
                partial(
                    self._client.v1.billing.credit_grants.void_grant_async,
                    grant_id,
                    None,
                    {"idempotency_key": f"void-credit-grant:{grant_id}"},
                ),
            )
        except PermanentStripeError as error:
            if error.status != 400:
                raise
            current = await self._calls.call(
                Endpoint.CREDIT_GRANT_RETRIEVE,
                f"retrieving credit grant {grant_id}",
                partial(self._client.v1.billing.credit_grants.retrieve_async, grant_id),
            )
            if current.voided_at is None:
                raise

    async def credit_balance(self, stripe_customer_id: str, grant_id: str) -> int:
        """What is left of one grant, in minor units (``credit_balance_summary``)."""
        summary = await self._calls.call(
            Endpoint.CREDIT_BALANCE_SUMMARY_RETRIEVE,
            f"reading the credit balance of grant {grant_id}",
            partial(
                self._client.v1.billing.credit_balance_summary.retrieve_async,
                {
                    "customer": stripe_customer_id,
                    "filter": {"type": "credit_grant", "credit_grant": grant_id},
                },
            ),
        )
        return sum(
            b.available_balance.monetary.value
            for b in summary.balances
            if b.available_balance.monetary is not None
        )

    async def credit_grants(self, stripe_customer_id: str) -> list[CreditGrantView]:
        """Every grant of the customer, voided ones included, newest first."""
        return [wire.grant_view(g) for g in await self._grants(stripe_customer_id)]

    async def _grants(self, stripe_customer_id: str) -> list[stripe.billing.CreditGrant]:
        async def page(after: str | None) -> stripe.ListObject[stripe.billing.CreditGrant]:
            params: CreditGrantListParams = {"customer": stripe_customer_id, "limit": PAGE_SIZE}
            if after is not None:
                params["starting_after"] = after
            return await self._client.v1.billing.credit_grants.list_async(params)

        return await self._calls.all_pages(
            Endpoint.CREDIT_GRANT_LIST, f"listing credit grants of {stripe_customer_id}", page
        )

    # Meters

    async def meter_ids(self) -> dict[str, str]:
        """Active meters' ids by ``event_name``."""

        async def page(after: str | None) -> stripe.ListObject[stripe.billing.Meter]:
            params: MeterListParams = {"status": "active", "limit": PAGE_SIZE}
            if after is not None:
                params["starting_after"] = after
            return await self._client.v1.billing.meters.list_async(params)

        meters = await self._calls.all_pages(Endpoint.METER_LIST, "listing meters", page)
        return {m.event_name: m.id for m in meters if m.status == "active"}

    async def create_meter(self, event_name: str, display_name: str) -> str:
        """A ``sum`` meter of ``payload[value]`` by ``payload[stripe_customer_id]``.

        If an active meter with this event name exists already (an earlier
        answer was lost), its id is returned; an inactive one is a
        PermanentStripeError (reactivating is a human's decision).
        """
        try:
            meter = await self._calls.call(
                Endpoint.METER_CREATE,
                f"creating meter {event_name}",
                partial(
                    self._client.v1.billing.meters.create_async,
                    wire.meter_params(event_name, display_name),
                ),
            )
        except PermanentStripeError as error:
            if error.code != "resource_already_exists":
                raise
            existing = (await self.meter_ids()).get(event_name)
            if existing is None:
                raise
            return existing
        return meter.id

    async def meter_total(
        self, meter_id: str, stripe_customer_id: str, start: datetime, end: datetime
    ) -> int:
        """Sum of the meter's usage for the customer in ``[start, end)``.

        Stripe takes only minute-aligned bounds, so an unaligned ``start`` is
        floored and an unaligned ``end`` ceiled to the minute: the answer is
        then for the smallest minute-aligned window covering ``[start, end)``.
        Pass aligned bounds (the reporter's windows are) for an exact answer.
        Stripe's summaries are eventually consistent: recent usage may be missing.
        """
        if wire.aware(end) < wire.aware(start):
            raise ValueError(f"end {end} is before start {start}")
        if end == start:
            return 0
        start_time, end_time = wire.minute_window(start, end)

        async def page(after: str | None) -> stripe.ListObject[stripe.billing.MeterEventSummary]:
            params: MeterEventSummaryListParams = {
                "customer": stripe_customer_id,
                "start_time": start_time,
                "end_time": end_time,
                "limit": PAGE_SIZE,
            }
            if after is not None:
                params["starting_after"] = after
            return await self._client.v1.billing.meters.event_summaries.list_async(meter_id, params)

        summaries = await self._calls.all_pages(
            Endpoint.METER_EVENT_SUMMARY_LIST,
            f"reading meter {meter_id} for {stripe_customer_id}",
            page,
        )
        total = sum((Decimal(str(s.aggregated_value)) for s in summaries), Decimal(0))
        # Our meters receive whole values only; a fraction means someone else reported to
        # the meter, and reconciliation shows the difference whichever way it is rounded.
        return int(total.to_integral_value(rounding=ROUND_HALF_EVEN))

    # Plumbing

    async def close(self) -> None:
        """Close the SDK's HTTP session."""
        # stripe's AIOHTTPClient.close_async has no annotations.
        await self._http_client.close_async()  # type: ignore[no-untyped-call]


if TYPE_CHECKING:

    def _implements_gateway(gateway: StripeGateway) -> Gateway:
        """mypy proves here that StripeGateway has the Gateway protocol's shape."""
        return gateway
