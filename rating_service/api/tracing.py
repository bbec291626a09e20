"""A server span per call (``rating.v1.RatingService/RecordOutcome``), continuing the
caller's trace when it sends W3C ``traceparent`` metadata; present only when tracing is on
(``rating_service.tracing``)."""

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
        from opentelemetry.trace import SpanKind, Status, StatusCode

        service, _, name = method.strip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

        async def traced(request: Any, context: Context) -> Any:
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
