"""compose.yaml starts what the README says: PostgreSQL, a migration, two replicas behind one
gRPC address, Prometheus scraping both, Grafana with the dashboard. No container runtime is
needed to check that its parts point at each other: names, ports, files and settings.

Where `docker compose` exists, its own validation runs too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rating_service.api.auth import load_tokens

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
REPLICAS = ("rating-a", "rating-b")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def port_of(listen: str) -> str:
    return listen.rsplit(":", 1)[1]


def mounted(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file or directory mounted there."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts


def test_every_setting_the_replicas_get_is_one_the_service_reads() -> None:
    read = set(
        re.findall(r"\"((?:RATING|STRIPE)_\w+)\"", (ROOT / "rating_service/config.py").read_text())
    )
    read |= set(
        re.findall(
            r"\"((?:RATING|STRIPE)_\w+)\"",
            (ROOT / "rating_service/reporter/settings.py").read_text(),
        )
    )

    for name in REPLICAS:
        given = set(services()[name]["environment"])
        assert given <= read, f"{name}: {sorted(given - read)} are not settings"


def test_both_replicas_serve_one_postgresql_ledger_after_the_migration() -> None:
    urls = {services()[name]["environment"]["RATING_DATABASE_URL"] for name in REPLICAS}

    (url,) = urls
    assert url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in url
    for name in REPLICAS:
        assert services()[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services()["migrate"]["command"] == ["rating-service", "migrate"]


def test_the_grpc_address_balances_over_both_replicas_on_their_port() -> None:
    nginx = mounted(services()["grpc"])["/etc/nginx/nginx.conf"].read_text()
    upstream = set(re.findall(r"server (\S+?):(\d+)", nginx))

    assert upstream == {
        (name, port_of(services()[name]["environment"]["RATING_LISTEN"])) for name in REPLICAS
    }
    assert "grpc_pass grpc://rating;" in nginx


def test_prometheus_scrapes_each_replicas_metrics_port() -> None:
    config = yaml.safe_load(
        mounted(services()["prometheus"])["/etc/prometheus/prometheus.yml"].read_text()
    )
    (job,) = config["scrape_configs"]
    (targets,) = [c["targets"] for c in job["static_configs"]]

    assert set(targets) == {
        f"{name}:{port_of(services()[name]['environment']['RATING_METRICS_LISTEN'])}"
        for name in REPLICAS
    }


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus() -> None:
    mounts = mounted(services()["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    (provider,) = yaml.safe_load((provisioning / "dashboards/rating-service.yaml").read_text())[
        "providers"
    ]
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())[
        "datasources"
    ]

    assert (mounts[provider["options"]["path"]] / "rating-service.json").is_file()
    assert source["url"] == "http://prometheus:9090"


def test_the_replicas_tokens_file_is_one_the_service_accepts() -> None:
    for name in REPLICAS:
        environment = services()[name]["environment"]
        tokens = mounted(services()[name])[environment["RATING_AUTH_TOKENS_FILE"]]
        table = load_tokens(str(tokens))

        assert [c.name for c in table.callers] == ["compose-admin"]


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("no `docker compose` here; the checks above stand in for it")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
