"""OpenTelemetry spans, when the ``tracing`` extra is installed; nothing at all otherwise.

The service uses the OpenTelemetry API only: spans go to whatever tracer provider the process
has (the SDK's, set up by ``opentelemetry-instrument`` or the operator's code; without one
the API's spans are no-ops). Without the package, ``TRACER`` is None and no code path pays
for tracing.

This module imports nothing of the service: the API layer and the reporter both use it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

NAME = "rating_service"


def _tracer() -> Tracer | None:
    if importlib.util.find_spec("opentelemetry") is None:
        return None
    from opentelemetry import trace

    return trace.get_tracer(NAME)


TRACER = _tracer()


@contextmanager
def client_span(name: str, attributes: Mapping[str, str]) -> Iterator[Span | None]:
    """A span for a call this process makes (to Stripe); None when tracing is off."""
    if TRACER is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with TRACER.start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=dict(attributes)
    ) as span:
        yield span
