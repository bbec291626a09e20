"""The server object tests hold: start it, point the stripe SDK at it, inspect it.

One :class:`StripeTestServer` is one Stripe account in test mode: its own
state, fault script, request log and clock, on its own local port. Start it
in the test's event loop (``async with``), so the SDK's async methods and the
server share the loop and a test needs no threads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import stripe
from aiohttp import web

from ._app import RequestRecord, StripeApp
from ._errors import JsonObject
from ._faults import Faults
from ._limits import TokenBucket
from ._spec import load_spec
from ._state import StripeState

DEFAULT_API_KEY = "sk_test_stripe_test_server"


class StripeTestServer:
    """A Stripe-compatible HTTP server for tests (billing meters, meter events, credits)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        strict_customers: bool = True,
        meter_event_latency: float = 0.005,
        rate_limit: float | None = None,
        rate_limit_burst: int | None = None,
    ) -> None:
        """
        Args:
            clock: the server's time, Unix seconds; every time window follows it.
            strict_customers: refuse meter events and credit grants for unknown
                customers (400 ``resource_missing``). Stripe accepts meter events for
                unknown customers and reports them later, asynchronously; pass False
                to accept them too.
            meter_event_latency: how long (real seconds) each synchronous meter event
                call is held open, so that concurrent calls overlap.
            rate_limit: requests a second allowed (token bucket on ``clock``); None
                for no limit. Stripe's sandbox allows about 25.
            rate_limit_burst: the bucket's size (default: ``rate_limit`` rounded up).
        """
        self.state = StripeState(strict_customers=strict_customers)
        self.faults = Faults()
        self.clock = clock
        bucket = None
        if rate_limit is not None:
            burst = rate_limit_burst if rate_limit_burst is not None else math.ceil(rate_limit)
            bucket = TokenBucket(rate_limit, burst, clock())
        self._app = StripeApp(
            spec=load_spec(),
            state=self.state,
            faults=self.faults,
            clock=clock,
            meter_event_latency=meter_event_latency,
            rate_limit=bucket,
        )
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._http_clients: list[stripe.AIOHTTPClient] = []

    @property
    def base_url(self) -> str:
        """``http://host:port`` once started."""
        if self._base_url is None:
            raise RuntimeError("the server is not started")
        return self._base_url

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, in order of completion."""
        return list(self._app.requests)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("the server is already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._app.handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=False)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = runner.addresses[0]
        self._runner = runner
        self._base_url = f"http://{bound[0]}:{bound[1]}"
        return self._base_url

    async def stop(self) -> None:
        """Close the SDK clients made by :meth:`stripe_client`, then stop listening."""
        self._app.stopping()
        for http_client in self._http_clients:
            # stripe's AIOHTTPClient.close_async has no annotations.
            await http_client.close_async()  # type: ignore[no-untyped-call]
        self._http_clients.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def add_customer(self, customer_id: str | None = None, **fields: Any) -> JsonObject:
        """Create a customer with the id a test picks (``server.add_customer("cus_a")``)."""
        return self.state.add_customer(customer_id, **{"created": int(self.clock()), **fields})

    def stripe_client(
        self,
        *,
        max_network_retries: int = 0,
        timeout: float = 10.0,
        api_key: str = DEFAULT_API_KEY,
    ) -> stripe.StripeClient:
        """A real ``stripe.StripeClient`` aimed at this server (``api`` and ``meter_events``).

        It sends through ``stripe.AIOHTTPClient`` (the SDK's own aiohttp transport;
        use the ``*_async`` methods), which :meth:`stop` closes. ``timeout`` is
        the client's total time per attempt, in seconds.
        """
        http_client = stripe.AIOHTTPClient(timeout=timeout)
        self._http_clients.append(http_client)
        return stripe.StripeClient(
            api_key,
            base_addresses={"api": self.base_url, "meter_events": self.base_url},
            max_network_retries=max_network_retries,
            http_client=http_client,
        )
