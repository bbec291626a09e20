"""The reporter's passes: plan what the ledger added, create grants, send usage.

It reads the ledger after each customer's cursor, never blocks an RPC (reads,
planning included, use their own snapshot; its writes are small jobs in the
ledger's group commit, and an idle pass makes none), and retries Stripe's
transient failures forever with exponential backoff and jitter. A permanent
failure parks only the customer concerned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from functools import partial

from prometheus_client import Counter, Gauge

from rating_service.ledger import outbox
from rating_service.ledger.lease import Lease
from rating_service.reporter import credit_grants, lag
from rating_service.reporter.gateway import Gateway, TransientStripeError
from rating_service.reporter.pass_context import PAGE, PassContext, PassResult
from rating_service.reporter.settings import ReporterSettings
from rating_service.reporter.usage_sender import UsageSender
from rating_service.service.clock import Clock
from rating_service.service.store import LedgerStore

log = logging.getLogger(__name__)

__all__ = ["PassResult", "Reporter"]

PLAN_LIMIT = 1000
"""Entries planned per read: the plan's save, a job of the writer, stays short."""
GAUGE_INTERVAL = 10.0
"""Seconds between gauge refreshes while passes find nothing to do (they read every
customer's standing): a pass that did work refreshes them at once."""

PLAN_CONFLICTS = Counter(
    "rating_stripe_plan_conflicts",
    "Plans refused as stale when saved (the cursor or what they read moved): planned again",
)
RETRIES = Counter("rating_stripe_transient_errors", "Stripe calls that failed and will be retried")
BACKLOG = Gauge("rating_stripe_backlog", "Work not yet in Stripe", ["kind"])
PARKED = Gauge("rating_stripe_parked_customers", "Customers whose reporting waits for a fix")
LEADER = Gauge(
    "rating_stripe_reporter_leader",
    "1 while this process is the one reporting to Stripe for its ledger, else 0 (standby)",
)
LEASE = "stripe-reporter"
"""Replicas sharing a ledger report one at a time: the others stand by."""


class Reporter:
    def __init__(
        self,
        store: LedgerStore,
        gateway: Gateway,
        settings: ReporterSettings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._ctx = PassContext(store, gateway, settings, clock)
        self._usage = UsageSender(self._ctx)
        self._warned_meters = False
        self._gauges_at: float | None = None
        """When the gauges were last refreshed (monotonic seconds)."""
        self.leading = False
        """Whether this process holds the reporter's lease (``run_forever``)."""

    async def run_once(self) -> PassResult:
        """One full pass; TransientStripeError propagates (the caller backs off).

        A pass that finds nothing to do writes nothing: every step asks a read
        snapshot first and goes to the writer only with work in hand.
        """
        result = PassResult()
        result.planned_entries = await self._plan()
        await self._close_months()
        await credit_grants.create_grants(self._ctx, result)
        await credit_grants.void_stale_grants(self._ctx, result)
        await credit_grants.create_owed_credits(self._ctx, result)
        await self._usage.send_usage(result)
        if result.did_work or self._gauges_due():
            await self.refresh_gauges()
        return result

    async def _close_months(self) -> None:
        """Turn closed months' debts into credits to create, when a month is due to close."""
        now, grace = self._clock(), self._settings.month_close_grace
        if await self._store.read(partial(outbox.months_to_close, now=now, grace=grace)):
            await self._store.write(
                partial(outbox.close_months, now=now, grace=grace, meters=self._settings.meters)
            )

    def _gauges_due(self) -> bool:
        return self._gauges_at is None or time.monotonic() - self._gauges_at >= GAUGE_INTERVAL

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Report until ``stop``, while this process holds the ledger's reporter lease."""
        lease = self._store.lease(LEASE)
        try:
            await self._lead_or_stand_by(lease, stop)
        finally:
            self._set_leading(False)
            await lease.release()

    def _set_leading(self, leading: bool) -> None:
        self.leading = leading
        LEADER.set(1 if leading else 0)

    async def _lead_or_stand_by(self, lease: Lease, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                if not await lease.try_acquire():
                    self._set_leading(False)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._settings.idle_interval)
                    continue
                self._set_leading(True)
                did_work = (await self.run_once()).did_work
                failures = 0
                delay = 0.0 if did_work else self._settings.idle_interval
            except TransientStripeError as error:
                RETRIES.inc()
                failures += 1
                delay = random.uniform(0, min(self._settings.max_backoff, 0.5 * 2**failures))
                log.warning("Stripe failed (%s); retrying in %.1f s", error, delay)
            except Exception:
                failures += 1
                delay = min(self._settings.max_backoff, 2.0**failures)
                log.exception("reporter pass failed; retrying in %.1f s", delay)
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            else:
                await asyncio.sleep(0)

    async def refresh_gauges(self) -> outbox.Backlog:
        """Set the backlog, parked and lag gauges from the ledger; answers the backlog."""
        self._gauges_at = time.monotonic()
        backlog = await self._store.read(outbox.backlog)
        if backlog.events_unsent and not self._warned_meters:
            missing = await self._usage.missing_meters()
            if missing:
                self._warned_meters = True
                log.warning(
                    "usage of meters %s waits: they do not exist in Stripe "
                    "(run `rating-service stripe setup`)",
                    ", ".join(missing),
                )
        BACKLOG.labels("entries").set(backlog.entries_unplanned)
        BACKLOG.labels("meter_events").set(backlog.events_unsent)
        BACKLOG.labels("credit_grants").set(backlog.grants_uncreated)
        PARKED.set(len(backlog.parked))
        lag.observe(
            await self._store.read(lambda c: outbox.reporting_standing(c, None)), self._clock()
        )
        return backlog

    async def _plan(self) -> int:
        """Plan every customer's new ledger range: on a read snapshot, saved by a short job.

        A plan refused as stale (the cursor moved since its snapshot) wrote
        nothing; the customer is still listed with work and planned again.
        """
        planned = 0
        while work := await self._store.read(lambda c: outbox.customers_with_work(c, PAGE)):
            for customer in work:
                plan = await self._store.read(
                    partial(
                        outbox.plan_range,
                        customer_id=customer.customer_id,
                        meters=self._settings.meters,
                        window=self._settings.window,
                        now=self._clock(),
                        limit=PLAN_LIMIT,
                    )
                )
                if plan is None:
                    continue
                if await self._store.write(partial(outbox.save_plan, plan=plan)):
                    planned += plan.entries
                else:
                    PLAN_CONFLICTS.inc()
                    log.info("plan of customer %r was stale; planning again", plan.customer_id)
        return planned
