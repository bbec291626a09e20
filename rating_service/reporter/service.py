"""Running the reporter: inside ``serve`` (when STRIPE_API_KEY is set) or as ``report``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from rating_service.config import Settings
from rating_service.reporter.gateway import Gateway, TransientStripeError
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import format_table, reconcile
from rating_service.service.store import LedgerStore

log = logging.getLogger(__name__)


def make_gateway(settings: Settings, clock: Callable[[], datetime]) -> Gateway:
    from rating_service.reporter.stripe_gateway import StripeGateway

    if not settings.stripe_api_key:
        raise ValueError("STRIPE_API_KEY is not set")
    return StripeGateway(
        settings.stripe_api_key,
        api_base=settings.stripe_api_base,
        meter_events_base=settings.stripe_meter_events_base,
        requests_per_second=settings.reporter.requests_per_second,
        clock=clock,
    )


@dataclass
class RunningReporter:
    """The reporter and its periodic reconciliation, as tasks of the service's loop."""

    reporter: Reporter
    gateway: Gateway
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.gateway.close()


def start_reporter(
    store: LedgerStore, settings: Settings, clock: Callable[[], datetime]
) -> RunningReporter:
    gateway = make_gateway(settings, clock)
    reporter = Reporter(store, gateway, settings.reporter, clock)
    running = RunningReporter(reporter, gateway)
    running.tasks.append(
        asyncio.create_task(reporter.run_forever(running.stop_event), name="stripe-reporter")
    )
    if settings.reporter.reconcile_interval > 0:
        running.tasks.append(
            asyncio.create_task(
                _reconcile_every(reporter, store, gateway, settings, clock, running.stop_event),
                name="stripe-reconcile",
            )
        )
    return running


async def _reconcile_every(
    reporter: Reporter,
    store: LedgerStore,
    gateway: Gateway,
    settings: Settings,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.reporter.reconcile_interval)
            return
        if not reporter.leading:
            continue  # the replica that reports reconciles; the others stand by
        try:
            result = await reconcile(store, gateway, settings.reporter, clock())
        except TransientStripeError as error:
            log.warning("reconciliation skipped, Stripe failed: %s", error)
            continue
        except Exception:
            log.exception("reconciliation failed")
            continue
        for d in result.differences:
            log.warning(
                "Stripe drift: customer %r %s %s: ledger %s, Stripe %s %s",
                d.customer_id,
                d.kind,
                d.subject,
                d.ledger,
                d.stripe,
                d.note,
            )
        if result.ok:
            log.info(format_table(result))
