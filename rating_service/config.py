"""Settings from the environment: the only module that reads it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from rating_service.logs import FORMATS, LogFormat
from rating_service.reporter.settings import ReporterSettings

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rating.db"
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    """RATING_DATABASE_URL: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``."""
    listen: str = DEFAULT_LISTEN
    """RATING_LISTEN: host:port of the gRPC server (port 0 picks a free one)."""
    metrics_listen: str | None = None
    """RATING_METRICS_LISTEN: host:port for Prometheus metrics; off when unset."""
    sweep_interval: float = 1.0
    """RATING_SWEEP_INTERVAL: seconds between sweeps that settle due outcomes and expire buckets."""
    max_concurrent_rpcs: int = 2000
    """RATING_MAX_CONCURRENT_RPCS: RatingService calls running at once (their request arrived)
    before RESOURCE_EXHAUSTED / OVERLOADED (api.md asks for at least 1,000); the health service
    is outside it."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """RATING_MAX_MESSAGE_BYTES: the largest request the server reads (default 8 MiB, at least
    1 KiB); a larger one is RESOURCE_EXHAUSTED, refused from its length alone. The largest valid
    request, a RecordOutcomes of 1,000 items with 16 attributes of 256 bytes each, takes about
    4.5 MiB."""
    shutdown_grace: float = 10.0
    """RATING_SHUTDOWN_GRACE: seconds in-flight calls get to finish on SIGTERM/SIGINT."""
    reuse_port: bool = False
    """RATING_REUSE_PORT: let several server processes share one port (SO_REUSEPORT)."""
    log_level: str = "INFO"
    """RATING_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR (WARNING drops the per-call lines)."""
    log_format: LogFormat = "json"
    """RATING_LOG_FORMAT: ``json`` (one object a line, for a log shipper) or ``text``."""
    reporter: ReporterSettings = field(default_factory=ReporterSettings)
    """STRIPE_API_KEY, STRIPE_API_BASE, STRIPE_METER_EVENTS_BASE, RATING_STRIPE_METERS,
    RATING_STRIPE_PRICES, RATING_STRIPE_WINDOW, RATING_STRIPE_MONTH_CLOSE_GRACE,
    RATING_STRIPE_RATE, RATING_RECONCILE_INTERVAL:
    what the Stripe reporter needs beyond the ledger (it runs when STRIPE_API_KEY is set)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api_base = env.get("STRIPE_API_BASE") or None
        return cls(
            database_url=env.get("RATING_DATABASE_URL") or DEFAULT_DATABASE_URL,
            listen=env.get("RATING_LISTEN") or DEFAULT_LISTEN,
            metrics_listen=env.get("RATING_METRICS_LISTEN") or None,
            sweep_interval=_number(env, "RATING_SWEEP_INTERVAL", 1.0, minimum=0.01),
            max_concurrent_rpcs=int(_number(env, "RATING_MAX_CONCURRENT_RPCS", 2000, minimum=1)),
            max_message_bytes=int(
                _number(env, "RATING_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, minimum=1024)
            ),
            shutdown_grace=_number(env, "RATING_SHUTDOWN_GRACE", 10.0, minimum=0),
            reuse_port=(env.get("RATING_REUSE_PORT") or "").lower() in ("1", "true", "yes"),
            log_level=_choice(env, "RATING_LOG_LEVEL", LOG_LEVELS, "INFO").upper(),
            log_format=_log_format(env),
            reporter=ReporterSettings(
                api_key=env.get("STRIPE_API_KEY") or None,
                api_base=api_base,
                meter_events_base=env.get("STRIPE_METER_EVENTS_BASE") or api_base,
                meters=_pairs(env, "RATING_STRIPE_METERS"),
                prices={
                    k: tuple(v.split("|")) for k, v in _pairs(env, "RATING_STRIPE_PRICES").items()
                },
                window=timedelta(seconds=_number(env, "RATING_STRIPE_WINDOW", 60, minimum=1)),
                month_close_grace=timedelta(
                    seconds=_number(env, "RATING_STRIPE_MONTH_CLOSE_GRACE", 3600, minimum=0)
                ),
                requests_per_second=_number(env, "RATING_STRIPE_RATE", 20.0, minimum=0.1),
                reconcile_interval=_number(env, "RATING_RECONCILE_INTERVAL", 3600.0, minimum=0),
            ),
        )


def _choice(env: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    raw = (env.get(name) or default).strip()
    if raw.lower() not in (c.lower() for c in choices):
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw.lower()


def _log_format(env: Mapping[str, str]) -> LogFormat:
    return "text" if _choice(env, "RATING_LOG_FORMAT", FORMATS, "json") == "text" else "json"


def _pairs(env: Mapping[str, str], name: str) -> dict[str, str]:
    """``a=x,b=y`` as a mapping (outcome type -> meter event name, or -> price ids)."""
    raw = env.get(name) or ""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SettingsError(f"{name}: {item!r} is not of the form outcome_type=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value
