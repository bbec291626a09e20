"""The v2 meter event stream: up to 100 events a request, under a session token.

The stream is Stripe's high-throughput path. It is authenticated by a meter
event session token, valid 15 minutes, renewed when less than a minute is
left and once more when Stripe answers 401
``billing_meter_event_session_expired`` (then the same events are sent again:
identifiers make that safe). Stripe validates the events after accepting the
request, so what it would drop is refused here first (``_stripe_wire``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import stripe

from rating_service.service.clock import Clock

from . import _stripe_wire as wire
from ._stripe_calls import AlreadyDelivered, Endpoint, StripeCalls
from ._stripe_errors import SESSION_EXPIRED
from .gateway import MeterEvent, TransientStripeError

if TYPE_CHECKING:
    from stripe.params.v2.billing import MeterEventStreamCreateParams

MAX_STREAM_EVENTS = 100
"""Events per meter event stream request (Stripe's limit)."""
SESSION_RENEWAL_MARGIN = timedelta(seconds=60)
"""A session token with less than this left is renewed before it is used."""


@dataclass(frozen=True)
class _Session:
    token: str
    expires_at: datetime


class MeterEventStream:
    """Sends meter events, holding the session token they are sent under."""

    def __init__(self, client: stripe.StripeClient, calls: StripeCalls, clock: Clock) -> None:
        self._client = client
        self._calls = calls
        self._clock = clock
        self._session: _Session | None = None
        self._session_lock = asyncio.Lock()

    async def send(self, events: Sequence[MeterEvent]) -> None:
        """1 to 100 events in one stream request; identifiers already delivered are fine.

        Raises ValueError for what Stripe's asynchronous validation would drop
        without telling us: a value below 1, an identifier that is empty or
        longer than 100 characters, a naive timestamp.
        """
        if not 1 <= len(events) <= MAX_STREAM_EVENTS:
            raise ValueError(
                f"a meter event stream request carries 1 to {MAX_STREAM_EVENTS} events, "
                f"not {len(events)}"
            )
        body: MeterEventStreamCreateParams = {"events": [wire.stream_event(e) for e in events]}
        action = f"sending {len(events)} meter events"
        for attempt in (1, 2):
            token = await self._session_token()
            try:
                await self._calls.call(
                    Endpoint.METER_EVENT_STREAM_CREATE,
                    action,
                    partial(
                        self._client.v2.billing.meter_event_stream.create_async,
                        body,
                        {"api_key": token},
                    ),
                )
            except AlreadyDelivered:
                return
            except TransientStripeError as error:
                if error.code != SESSION_EXPIRED or attempt == 2:
                    raise
                self._forget_session(token)
                continue
            return

    async def _session_token(self) -> str:
        """A meter event session token with at least a minute left, opening a session if needed."""
        async with self._session_lock:
            session = self._session
            if session is None or session.expires_at - self._clock() < SESSION_RENEWAL_MARGIN:
                created = await self._calls.call(
                    Endpoint.METER_EVENT_SESSION_CREATE,
                    "opening a meter event session",
                    self._client.v2.billing.meter_event_session.create_async,
                )
                expires_at = wire.parse_iso(created.expires_at)
                session = _Session(created.authentication_token, expires_at)
                self._session = session
            return session.token

    def _forget_session(self, token: str) -> None:
        if self._session is not None and self._session.token == token:
            self._session = None
