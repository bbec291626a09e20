"""A Stripe-compatible test server for Stripe Billing's meters, meter events and credits.

Tests run the real ``stripe`` SDK against it: it routes and validates every
request against Stripe's published OpenAPI description (a vendored subset,
``openapi/``), keeps state like an account in test mode, and injects faults
on demand. Neither stripe-mock (stateless, no v2) nor localstripe (no billing
meters or credits) can stand in for Stripe here. See ``README.md``.

    async with StripeTestServer(clock=ManualClock()) as server:
        server.add_customer("cus_a")
        client = server.stripe_client()
        await client.v1.billing.meters.create_async({...})
"""

from ._app import RequestRecord
from ._clock import ManualClock
from ._faults import FaultKind, Faults
from ._meters import MeterEventRecord
from ._server import StripeTestServer
from ._state import StreamRejection, StripeState

__all__ = [
    "FaultKind",
    "Faults",
    "ManualClock",
    "MeterEventRecord",
    "RequestRecord",
    "StreamRejection",
    "StripeState",
    "StripeTestServer",
]
