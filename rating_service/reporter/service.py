"""Running the reporter: inside ``serve`` (when STRIPE_API_KEY is set) or as ``report``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from rating_service.reporter.gateway import Gateway, TransientStripeError
from rating_service.reporter.loop import Reporter
from rating_service.reporter.reconcile import format_table, reconcile
from rating_service.reporter.settings import ReporterSettings
from rating_service.service.clock import Clock
from rating_service.service.store import LedgerStore

log = logging.getLogger(__name__)


def make_gateway(settings: ReporterSettings, clock: Clock) -> Gateway:
    from rating_service.reporter.stripe_gateway import StripeGateway

    if not settings.api_key:
        raise ValueError("STRIPE_API_KEY is not set")
    return StripeGateway(
        settings.api_key,
        api_base=settings.api_base,
        meter_events_base=settings.meter_events_base,
        requests_per_second=settings.requests_per_second,
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


def start_reporter(store: LedgerStore, settings: ReporterSettings, clock: Clock) -> RunningReporter:
    gateway = make_gateway(settings, clock)
    reporter = Reporter(store, gateway, settings, clock)
    running = RunningReporter(reporter, gateway)
    running.tasks.append(
        asyncio.create_task(reporter.run_forever(running.stop_event), name="stripe-reporter")
    )
    if settings.reconcile_interval > 0:
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
    settings: ReporterSettings,
    clock: Clock,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.reconcile_interval)
            return
        if not reporter.leading:
            continue  # the replica that reports reconciles; the others stand by
        try:
            result = await reconcile(store, gateway, settings, clock())
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
