"""Prometheus metrics: the collectors, and the HTTP server that exposes them.

Served on RATING_METRICS_LISTEN when it is set; the collectors exist either
way, so instrumented code never checks whether metrics are on. This module
imports nothing of the service, so any layer may count into it (the ledger
writer does); the RPC metrics are taken by ``rating_service.api.metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RPCS = Counter("rating_rpcs", "gRPC calls answered, by method and status code", ["method", "code"])
RPC_SECONDS = Histogram(
    "rating_rpc_seconds",
    "Time to answer a gRPC call, by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
COMMIT_BATCH = Histogram(
    "rating_ledger_commit_batch_size",
    "Calls committed together in one ledger transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
COMMIT_RETRIES = Counter(
    "rating_ledger_commit_retries",
    "Ledger transactions run again after the database aborted them as a deadlock or "
    "serialization failure (replicas sharing PostgreSQL); nothing of them was written",
)
SPEND_ALERTS = Counter(
    "rating_spend_alerts",
    "Spend alerts raised (a customer's month reached one of its alert thresholds), counted by "
    "the process whose transaction raised them, once committed",
)
COMMIT_FAILURES = Counter(
    "rating_ledger_commit_failures",
    "Ledger transactions that failed to commit (callers got UNAVAILABLE)",
)

COMMIT_SECONDS = Histogram(
    "rating_ledger_commit_seconds",
    "Time from a group commit's first statement to its durable commit (retries included)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def start_metrics_server(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")
