"""The Grafana dashboard in deploy/ charts metrics the service really exports: every series a
panel queries exists, with every label the query groups or filters by.

A renamed metric or label otherwise leaves an operator with an empty panel on the day they
need it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/rating-service.json"
INSTRUMENTED = (
    "rating_service.metrics",
    "rating_service.api.metrics",
    "rating_service.reporter.loop",
    "rating_service.reporter.lag",
    "rating_service.reporter.reconcile",
    "rating_service.reporter.stripe_gateway",
)
"""The modules that define the service's collectors (importing them registers them)."""
SCRAPE_LABELS = {"instance", "job", "le"}
"""Labels Prometheus adds on scraping, or histograms carry on their buckets."""
SERIES_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def exported() -> dict[str, set[str]]:
    """Each exported metric's name (as a query names it, suffix stripped) and its labels."""
    for module in INSTRUMENTED:
        importlib.import_module(module)
    found: dict[str, set[str]] = {}
    # prometheus_client has no public way to list a collector's label names.
    for name, collector in REGISTRY._names_to_collectors.items():
        if name.startswith("rating_"):
            found[name] = set(getattr(collector, "_labelnames", ()))
    return found


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def base_name(series: str) -> str:
    for suffix in SERIES_SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def labels_used(expr: str) -> set[str]:
    """Labels in ``by (...)`` groupings and ``{label=...}`` matchers."""
    used: set[str] = set()
    for group in re.findall(r"\bby \(([^)]*)\)", expr):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    return used


@pytest.mark.parametrize(("title", "expr"), queries())
def test_every_panel_queries_an_exported_metric_by_its_labels(title: str, expr: str) -> None:
    metrics = exported()
    series = re.findall(r"\brating_\w+", expr)

    assert series, f"panel {title!r} queries no rating_ metric"
    for name in series:
        metric = base_name(name) if base_name(name) in metrics else name
        assert metric in metrics, f"panel {title!r}: no metric {name}"
        unknown = labels_used(expr) - metrics[metric] - SCRAPE_LABELS
        assert not unknown, f"panel {title!r}: {name} has no label {sorted(unknown)}"
