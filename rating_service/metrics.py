"""Prometheus metrics, served on RATING_METRICS_LISTEN when it is set."""

from __future__ import annotations

from prometheus_client import start_http_server


def start_metrics_server(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")
