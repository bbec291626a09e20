"""A server span per call (``rating.v1.RatingService/RecordOutcome``), continuing the
caller's trace when it sends W3C ``traceparent`` metadata; present only when tracing is on
(``rating_service.tracing``).

Without a tracer provider (the API's default) every span is a no-op, yet starting one, with
the caller's context extracted and made current, cost a twentieth of a cheap call: the call
then skips it. The provider is looked up per call, so one set after the server was built
(the SDK's, by the operator's code) is followed from its next call."""

from __future__ import annotations

from typing import Any

import grpc

from rating_service.api.interceptors import Context, Unary, UnaryInterceptor
from rating_service.tracing import TRACER


class TracingInterceptor(UnaryInterceptor):
    """Apply it outermost but for the access log: the span then covers admission and errors."""

    def wrap(self, method: str, inner: Unary) -> Unary:
        assert TRACER is not None, "add the interceptor only when tracing is on"
        tracer = TRACER
        from opentelemetry import propagate
        from opentelemetry.trace import (
            ProxyTracerProvider,
            SpanKind,
            Status,
            StatusCode,
            get_tracer_provider,
        )

        service, _, name = method.strip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

        async def traced(request: Any, context: Context) -> Any:
            if isinstance(get_tracer_provider(), ProxyTracerProvider):
                return await inner(request, context)  # no provider: the span would be a no-op
            carrier = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            with tracer.start_as_current_span(
                method.strip("/"),
                context=propagate.extract(carrier),
                kind=SpanKind.SERVER,
                attributes=attributes,
            ) as span:
                try:
                    return await inner(request, context)
                finally:
                    code = context.code() or grpc.StatusCode.OK
                    if isinstance(code, grpc.StatusCode):
                        span.set_attribute("rpc.grpc.status_code", code.value[0])
                        if code is not grpc.StatusCode.OK:
                            span.set_status(Status(StatusCode.ERROR, code.name))

        return traced
