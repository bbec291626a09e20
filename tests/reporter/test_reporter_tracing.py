"""With the tracing extra installed, each request to Stripe is a client span named after its
endpoint; a failed one is an error span."""

from __future__ import annotations

import pytest
import reporter_support as rs
from opentelemetry.trace import SpanKind, StatusCode
from tracing_support import recorded_spans, spans_named

from rating_service.reporter.gateway import PermanentStripeError
from rating_service.reporter.stripe_gateway import StripeGateway

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway


async def test_each_stripe_request_is_a_client_span(stripe_gateway: StripeGateway) -> None:
    recorded_spans().clear()

    await stripe_gateway.meter_ids()

    (span,) = spans_named("stripe Meter.list")
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert span.attributes["stripe.endpoint"] == "Meter.list"


async def test_a_refused_stripe_request_is_an_error_span(stripe_gateway: StripeGateway) -> None:
    recorded_spans().clear()

    with pytest.raises(PermanentStripeError):
        await stripe_gateway.ensure_customer("cus_nobody")

    (span,) = spans_named("stripe Customer.retrieve")
    assert span.status.status_code is StatusCode.ERROR
