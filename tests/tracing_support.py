"""Spans the service made in this process, kept in memory by the OpenTelemetry SDK."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER: InMemorySpanExporter | None = None


def recorded_spans() -> InMemorySpanExporter:
    """The exporter of this process's tracer provider, set up on first use (a process may set
    its provider once: the service's tracer, taken at import, follows it)."""
    global _EXPORTER
    if _EXPORTER is None:
        _EXPORTER = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


def spans_named(name: str) -> list[ReadableSpan]:
    return [s for s in recorded_spans().get_finished_spans() if s.name == name]
