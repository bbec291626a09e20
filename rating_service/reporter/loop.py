"""The reporter's passes: plan what the ledger added, create grants, send usage.

It reads the ledger after each customer's cursor, never blocks an RPC (reads
use their own snapshot; its writes are small jobs in the ledger's group
commit), and retries Stripe's transient failures forever with exponential
backoff and jitter. A permanent failure parks only the customer concerned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from prometheus_client import Counter, Gauge

from rating_service.domain.buckets import BucketSource
from rating_service.domain.grants import grant_idempotency_key
from rating_service.domain.postings import period_of
from rating_service.domain.usage import STRIPE_MAX_AGE, owed_credit_key, stripe_timestamp
from rating_service.ledger import outbox
from rating_service.ledger.lease import Lease
from rating_service.reporter import lag
from rating_service.reporter.currency import minor_units
from rating_service.reporter.gateway import (
    CancelAnswer,
    CreditGrantSpec,
    Gateway,
    MeterEvent,
    PermanentStripeError,
    TransientStripeError,
)
from rating_service.reporter.settings import ReporterSettings
from rating_service.service.clock import Clock
from rating_service.service.store import LedgerStore

log = logging.getLogger(__name__)

PAGE = 100
PLAN_LIMIT = 1000
"""Entries planned per job: small enough that a job never holds the writer long."""

SENT = Counter("rating_stripe_meter_events_sent", "Meter events Stripe accepted")
CANCELLED = Counter(
    "rating_stripe_meter_events_cancelled", "Meter events cancelled in Stripe after a reversal"
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


@dataclass
class PassResult:
    planned_entries: int = 0
    events_sent: int = 0
    events_cancelled: int = 0
    grants_created: int = 0
    grants_voided: int = 0
    parked: int = 0

    @property
    def did_work(self) -> bool:
        return bool(
            self.planned_entries
            or self.events_sent
            or self.events_cancelled
            or self.grants_created
            or self.grants_voided
            or self.parked
        )


class Reporter:
    def __init__(
        self,
        store: LedgerStore,
        gateway: Gateway,
        settings: ReporterSettings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._settings = settings
        self._clock = clock
        self._warned_meters = False
        self._meters: set[str] = set()
        self.leading = False
        """Whether this process holds the reporter's lease (``run_forever``)."""

    async def _existing_meters(self, event_names: list[str]) -> set[str]:
        """Which of ``event_names`` have a meter; Stripe is asked only about unknown ones."""
        if not set(event_names) <= self._meters:
            self._meters = set(await self._gateway.meter_ids())
        return self._meters & set(event_names)

    async def _missing_meters(self) -> list[str]:
        planned = await self._store.read(outbox.unsent_event_names)
        return sorted(set(planned) - await self._existing_meters(planned))

    async def run_once(self) -> PassResult:
        """One full pass; TransientStripeError propagates (the caller backs off)."""
        result = PassResult()
        result.planned_entries = await self._plan()
        await self._store.write(
            partial(
                outbox.close_months,
                now=self._clock(),
                grace=self._settings.month_close_grace,
                meters=self._settings.meters,
            )
        )
        await self._create_grants(result)
        await self._void_stale_grants(result)
        await self._create_owed_credits(result)
        await self._send_usage(result)
        await self.refresh_gauges()
        return result

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
        backlog = await self._store.read(outbox.backlog)
        if backlog.events_unsent and not self._warned_meters:
            missing = await self._missing_meters()
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
        planned = 0
        while work := await self._store.read(lambda c: outbox.customers_with_work(c, PAGE)):
            for customer in work:
                planned += await self._store.write(
                    partial(
                        outbox.plan_customer,
                        customer_id=customer.customer_id,
                        meters=self._settings.meters,
                        window=self._settings.window,
                        now=self._clock(),
                        limit=PLAN_LIMIT,
                    )
                )
        return planned

    async def _verified(
        self, customer_id: str, stripe_customer_id: str, result: PassResult
    ) -> bool:
        """Ask Stripe once whether it knows the customer; park it if not."""
        try:
            await self._gateway.ensure_customer(stripe_customer_id)
        except PermanentStripeError as error:
            await self._park(customer_id, error, result)
            return False
        await self._store.write(
            lambda c: outbox.mark_verified(c, customer_id, stripe_customer_id, self._clock())
        )
        return True

    async def _park(self, customer_id: str, error: Exception, result: PassResult) -> None:
        log.error("parking Stripe reporting of customer %r: %s", customer_id, error)
        result.parked += 1
        await self._store.write(lambda c: outbox.park(c, customer_id, str(error), self._clock()))

    async def _create_grants(self, result: PassResult) -> None:
        while grants := await self._store.read(lambda c: outbox.grants_to_create(c, PAGE)):
            for grant in grants:
                if not grant.verified and not await self._verified(
                    grant.customer_id, grant.stripe_customer_id, result
                ):
                    continue
                try:
                    grant_id = await self._create_grant(grant)
                except PermanentStripeError as error:
                    await self._park(grant.customer_id, error, result)
                    continue
                await self._store.write(
                    partial(
                        outbox.record_grant,
                        customer_id=grant.customer_id,
                        bucket_id=grant.bucket_id,
                        grant_id=grant_id,
                        version=grant.version,
                    )
                )
                result.grants_created += 1

    async def _create_grant(self, grant: outbox.GrantToCreate) -> str:
        """The grant of the bucket's planned version (domain/grants.py), worth its units."""
        amount = minor_units(grant.unit_price_nanos * grant.units, grant.currency)
        if amount <= 0:
            return ""  # nothing to credit (a free outcome type, or nothing left)
        return await self._gateway.create_credit_grant(
            CreditGrantSpec(
                idempotency_key=grant_idempotency_key(
                    grant.customer_id, grant.bucket_id, grant.version
                ),
                stripe_customer_id=grant.stripe_customer_id,
                amount_minor=amount,
                currency=grant.currency.lower(),
                category="promotional" if grant.source is BucketSource.PROMOTIONAL else "paid",
                effective_at=grant.valid_from,
                expires_at=grant.valid_until,
                name=f"{grant.units} x {grant.outcome_type} ({grant.bucket_id})"[:100],
                metadata={
                    "rating_customer_id": grant.customer_id,
                    "bucket_id": grant.bucket_id,
                    "grant_version": str(grant.version),
                },
                price_ids=tuple(self._settings.prices.get(grant.outcome_type, ())),
            )
        )

    async def _void_stale_grants(self, result: PassResult) -> None:
        """Void every grant of a bucket but its current version's, once that one exists.

        Stripe is asked for the customer's grants rather than trusting stored ids, so
        a grant created before a crash kept its id from the ledger is voided too.
        """
        while stale := await self._store.read(lambda c: outbox.stale_grants(c, PAGE)):
            for bucket in stale:
                try:
                    for grant in await self._gateway.credit_grants(bucket.stripe_customer_id):
                        if (
                            not grant.voided
                            and grant.grant_id != bucket.grant_id
                            and grant.metadata.get("bucket_id") == bucket.bucket_id
                            and grant.metadata.get("rating_customer_id") == bucket.customer_id
                        ):
                            await self._gateway.void_credit_grant(grant.grant_id)
                            result.grants_voided += 1
                except PermanentStripeError as error:
                    await self._park(bucket.customer_id, error, result)
                    continue
                await self._store.write(
                    partial(
                        outbox.record_stale_voided,
                        customer_id=bucket.customer_id,
                        bucket_id=bucket.bucket_id,
                        version=bucket.version,
                    )
                )

    async def _create_owed_credits(self, result: PassResult) -> None:
        """Credit grants for what closed months owe back (domain/usage.py, policy step 4)."""
        while owed := await self._store.read(lambda c: outbox.owed_credits_to_create(c, PAGE)):
            for credit in owed:
                if not credit.verified and not await self._verified(
                    credit.customer_id, credit.stripe_customer_id, result
                ):
                    continue
                try:
                    grant_id = await self._create_owed_credit(credit)
                except PermanentStripeError as error:
                    await self._park(credit.customer_id, error, result)
                    continue
                await self._store.write(
                    partial(
                        outbox.record_owed_credit,
                        customer_id=credit.customer_id,
                        event_name=credit.event_name,
                        period=credit.period,
                        number=credit.number,
                        grant_id=grant_id,
                    )
                )
                result.grants_created += 1

    async def _create_owed_credit(self, credit: outbox.OwedCredit) -> str:
        amount = minor_units(credit.unit_price_nanos * credit.units, credit.currency)
        if amount <= 0:
            return ""  # nothing to give back (a free outcome type)
        key = owed_credit_key(credit.customer_id, credit.event_name, credit.period, credit.number)
        outcome_types = [
            t for t in self._settings.prices if self._settings.event_name(t) == credit.event_name
        ]
        return await self._gateway.create_credit_grant(
            CreditGrantSpec(
                idempotency_key=key,
                stripe_customer_id=credit.stripe_customer_id,
                amount_minor=amount,
                currency=credit.currency.lower(),
                # Not prepaid: usage billed and then reversed, given back as a discount.
                category="promotional",
                effective_at=self._clock(),
                expires_at=None,
                name=(
                    f"{credit.units} x {credit.event_name} reversed after billing, {credit.period}"
                )[:100],
                metadata={
                    "rating_customer_id": credit.customer_id,
                    "owed_back": key,
                    "period": credit.period,
                    "event_name": credit.event_name,
                    "units": str(credit.units),
                },
                price_ids=tuple(p for t in sorted(outcome_types) for p in self._settings.prices[t])[
                    :20
                ],
            )
        )

    async def _send_usage(self, result: PassResult) -> None:
        # The v2 stream accepts events for a meter that does not exist and then
        # drops them: only usage of existing meters is sent, the rest waits.
        # An idle pass asks the database only, not Stripe.
        pending = await self._store.read(outbox.unsent_event_names)
        if not pending:
            return
        meters = await self._existing_meters(pending)
        # New usage first, with the events that cancels wait on (a cancel is made only
        # of an event Stripe acknowledged); then the cancels; then the replacements
        # they freed.
        await self._send_unsent(meters, result)
        if await self._cancel(meters, result):
            await self._send_unsent(meters, result)

    async def _send_unsent(self, meters: set[str], result: PassResult) -> None:
        while events := await self._store.read(lambda c: outbox.unsent_events(c, PAGE, meters)):
            unverified = {e.customer_id: e.stripe_customer_id for e in events if not e.verified}
            rejected = {
                customer_id
                for customer_id, stripe_id in unverified.items()
                if not await self._verified(customer_id, stripe_id, result)
            }
            ready = [e for e in events if e.customer_id not in rejected]
            if ready:
                await self._send(ready, result)

    async def _cancel(self, meters: set[str], result: PassResult) -> bool:
        """Make the cancels reversals planned; each one frees its replacement to be sent.

        A cancel Stripe refuses (the event's 24 hours ran out meanwhile, or it has no
        such event) turns the reversals it carried into their month's debt, so they
        still reach Stripe. True when a cancel was answered.
        """
        answered = False
        while cancels := await self._store.read(lambda c: outbox.pending_cancels(c, PAGE, meters)):
            for cancel in cancels:
                try:
                    answer = await self._gateway.cancel_meter_event(
                        cancel.event_name, cancel.identifier
                    )
                except PermanentStripeError as error:
                    await self._park(cancel.customer_id, error, result)
                    continue
                answered = True
                if answer is CancelAnswer.CANCELLED:
                    await self._store.write(
                        partial(
                            outbox.mark_cancelled, identifier=cancel.identifier, now=self._clock()
                        )
                    )
                    CANCELLED.inc()
                    result.events_cancelled += 1
                    continue
                owed = await self._store.write(
                    partial(outbox.cancel_refused, identifier=cancel.identifier)
                )
                log.warning(
                    "Stripe refused to cancel meter event %s of customer %r (%s): "
                    "%d reversed units are owed by its month instead",
                    cancel.identifier,
                    cancel.customer_id,
                    answer.value,
                    owed,
                )
        return answered

    async def _send(self, events: Sequence[outbox.UnsentEvent], result: PassResult) -> None:
        now = self._clock()
        stamps = {e.identifier: stripe_timestamp(e.window_start, now) for e in events}
        # Usage older than Stripe takes lands in a later month there: recorded for reconcile.
        late = {
            e.identifier: period_of(stamps[e.identifier])
            for e in events
            if period_of(stamps[e.identifier]) != period_of(e.window_start)
        }
        try:
            await self._gateway.send_meter_events(
                [
                    MeterEvent(
                        identifier=e.identifier,
                        event_name=e.event_name,
                        stripe_customer_id=e.stripe_customer_id,
                        value=e.value,
                        timestamp=stamps[e.identifier],
                    )
                    for e in events
                ]
            )
        except PermanentStripeError as error:
            customers = sorted({e.customer_id for e in events})
            if len(customers) == 1:
                await self._park(customers[0], error, result)
                return
            for customer_id in customers:  # find the customer Stripe refuses
                await self._send([e for e in events if e.customer_id == customer_id], result)
            return
        await self._store.write(
            lambda c: outbox.mark_sent(c, [e.identifier for e in events], self._clock(), late)
        )
        if late:
            log.warning(
                "%d meter events older than Stripe's %d days were stamped into a later month "
                "(`rating-service reconcile` lists them)",
                len(late),
                STRIPE_MAX_AGE.days,
            )
        SENT.inc(len(events))
        result.events_sent += len(events)
