"""Composition root: wires the store, the sweeps and the server, and runs them until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rating_service import bootstrap
from rating_service.api.server import BoundServer, create_server
from rating_service.config import Settings, require_auth_or_loopback
from rating_service.ledger.exclusive import Claim, LedgerInUse, claim_ledger
from rating_service.ledger.history import latest_recorded_at
from rating_service.reporter.service import RunningReporter
from rating_service.service.clock import Clock, ClockBehind, MonotonicClock, system_clock
from rating_service.service.store import LedgerStore

log = logging.getLogger("rating_service")


@dataclass
class Service:
    """A running service: what tests and ``serve`` start and stop."""

    store: LedgerStore
    bound: BoundServer
    sweeper: asyncio.Task[None]
    reporter: RunningReporter | None = None
    claim: Claim | None = None
    """This process's claim on a SQLite ledger, released once the store is closed."""

    @property
    def port(self) -> int:
        return self.bound.port

    async def stop(self, grace: float) -> None:
        """Stop accepting calls, let those in flight finish, then close the ledger."""
        started = time.monotonic()
        await self.bound.health.enter_graceful_shutdown()
        self.store.alert_feed.close()  # watches end (UNAVAILABLE) instead of holding the drain
        await self.bound.admission.drain(grace)
        await self.bound.server.stop(max(grace - (time.monotonic() - started), 0.5))
        if self.bound.probe is not None:
            await self.bound.probe.stop(0)
        if self.reporter is not None:
            await self.reporter.stop()
        self.sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sweeper
        await self.store.close()
        if self.claim is not None:
            self.claim.release()


async def _sweep(store: LedgerStore, interval: float, clock: Clock) -> None:
    """Time-driven transitions: pending outcomes settle, buckets expire."""
    steps: tuple[Callable[[], Awaitable[int]], ...] = (
        lambda: store.settle_due(clock()),
        lambda: store.expire_buckets(clock()),
    )
    while True:
        for step in steps:
            try:
                while await step() > 0:
                    pass  # a full batch: there may be more due
            except asyncio.CancelledError:
                raise
            except ClockBehind:
                break  # the clock has said so; nothing is due that was not due before
            except Exception:
                log.exception("sweep failed; retrying at the next interval")
        await asyncio.sleep(interval)


def _claim(settings: Settings) -> tuple[Claim | None, bool]:
    """This process's claim on a SQLite ledger, and whether its writer keeps a working set."""
    try:
        return claim_ledger(settings.database_url), True
    except LedgerInUse as error:
        log.warning(
            "%s: serving without the writer's working set (one server per SQLite file is "
            "faster; several replicas belong on PostgreSQL)",
            error,
        )
        return None, False


async def start(settings: Settings, clock: Clock = system_clock) -> Service:
    """Open the ledger and start serving; bad auth or TLS settings raise ``SettingsError`` first."""
    require_auth_or_loopback(settings)
    tokens = bootstrap.token_table(settings)
    credentials = bootstrap.server_credentials(settings)
    if tokens is None:
        log.warning(
            "auth is off: every caller may call every RPC on %s (set RATING_AUTH_TOKENS_FILE "
            "to require tokens)",
            settings.listen,
        )
    claim, working_set = _claim(settings)
    try:
        store = await bootstrap.open_store(settings, migrate=True, working_set=working_set)
    except BaseException:
        if claim is not None:
            claim.release()
        raise
    try:
        # Calls and sweeps never use an instant earlier than the ledger's latest.
        ledger_clock = MonotonicClock(clock, floor=await store.read(latest_recorded_at))
        page_token_key = await bootstrap.page_token_key(store)
        bound = await create_server(
            store,
            settings.listen,
            max_concurrent_rpcs=settings.max_concurrent_rpcs,
            max_message_bytes=settings.max_message_bytes,
            page_token_key=page_token_key,
            tokens=tokens,
            credentials=credentials,
            health_listen=settings.health_listen,
            reuse_port=settings.reuse_port,
            clock=ledger_clock,
        )
        await bound.server.start()
        if bound.probe is not None:
            await bound.probe.start()
    except BaseException:
        await store.close()
        if claim is not None:
            claim.release()
        raise
    sweeper = asyncio.create_task(
        _sweep(store, settings.sweep_interval, ledger_clock), name="sweeper"
    )
    reporter = bootstrap.reporter(store, settings, clock)
    # Everything built so far lives as long as the process: keep it out of the
    # garbage collector's full passes, which otherwise stall the loop ~45 ms.
    gc.collect()
    gc.freeze()
    return Service(store, bound, sweeper, reporter, claim)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then shut down gracefully and return 0."""
    if settings.metrics_listen:
        from rating_service.metrics import start_metrics_server

        start_metrics_server(settings.metrics_listen)
    service = await start(settings)
    host = settings.listen.rsplit(":", 1)[0]
    log.info(
        "rating-service listening on %s:%d (%s; %s; %s)",
        host,
        service.port,
        _redact(settings.database_url),
        ("mutual TLS" if settings.tls_client_ca else "TLS") if settings.tls_cert else "plaintext",
        f"tokens from {settings.auth_tokens_file}" if settings.auth_tokens_file else "auth off",
    )
    if service.bound.probe is not None:
        log.info("health service alone (plaintext) on %s", settings.health_listen)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, _reload_tokens, service, settings)
    await stopping.wait()
    log.info("shutting down: finishing calls in flight (up to %.0f s)", settings.shutdown_grace)
    await service.stop(settings.shutdown_grace)
    log.info("stopped")
    return 0


def _reload_tokens(service: Service, settings: Settings) -> None:
    """SIGHUP: read the tokens file again (a bad one leaves the callers in force as they were)."""
    authenticator = service.bound.authenticator
    if authenticator is None or not settings.auth_tokens_file:
        log.warning("SIGHUP ignored: auth is off (RATING_AUTH_TOKENS_FILE is not set)")
        return
    authenticator.reload(settings.auth_tokens_file)


def _redact(url: str) -> str:
    """The database URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"
    return url
