"""Sending usage: the planned meter events to Stripe, and the cancels reversals planned.

The v2 stream accepts events for a meter that does not exist and then drops
them: only usage of meters Stripe has is sent, the rest waits. A replacement
is sent only once Stripe confirmed the cancel of the event it replaces.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from prometheus_client import Counter

from rating_service.domain.postings import period_of
from rating_service.domain.usage import STRIPE_MAX_AGE, stripe_timestamp
from rating_service.ledger import outbox
from rating_service.reporter.gateway import CancelAnswer, MeterEvent, PermanentStripeError
from rating_service.reporter.pass_context import PAGE, PassContext, PassResult

log = logging.getLogger(__name__)

SENT = Counter("rating_stripe_meter_events_sent", "Meter events Stripe accepted")
CANCELLED = Counter(
    "rating_stripe_meter_events_cancelled", "Meter events cancelled in Stripe after a reversal"
)


class UsageSender:
    """Sends usage pass after pass; knows which meters Stripe has (asked when one is new)."""

    def __init__(self, ctx: PassContext) -> None:
        self._ctx = ctx
        self._meters: set[str] = set()

    async def existing_meters(self, event_names: list[str]) -> set[str]:
        """Which of ``event_names`` have a meter; Stripe is asked only about unknown ones."""
        if not set(event_names) <= self._meters:
            self._meters = set(await self._ctx.gateway.meter_ids())
        return self._meters & set(event_names)

    async def missing_meters(self) -> list[str]:
        """Meters with usage waiting that Stripe does not have."""
        planned = await self._ctx.store.read(outbox.unsent_event_names)
        return sorted(set(planned) - await self.existing_meters(planned))

    async def send_usage(self, result: PassResult) -> None:
        # The v2 stream accepts events for a meter that does not exist and then
        # drops them: only usage of existing meters is sent, the rest waits.
        # An idle pass asks the database only, not Stripe.
        pending = await self._ctx.store.read(outbox.unsent_event_names)
        if not pending:
            return
        meters = await self.existing_meters(pending)
        # New usage first, with the events that cancels wait on (a cancel is made only
        # of an event Stripe acknowledged); then the cancels; then the replacements
        # they freed.
        await self._send_unsent(meters, result)
        if await self._cancel(meters, result):
            await self._send_unsent(meters, result)

    async def _send_unsent(self, meters: set[str], result: PassResult) -> None:
        while events := await self._ctx.store.read(lambda c: outbox.unsent_events(c, PAGE, meters)):
            unverified = {e.customer_id: e.stripe_customer_id for e in events if not e.verified}
            rejected = {
                customer_id
                for customer_id, stripe_id in unverified.items()
                if not await self._ctx.verified(customer_id, stripe_id, result)
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
        while cancels := await self._ctx.store.read(
            lambda c: outbox.pending_cancels(c, PAGE, meters)
        ):
            for cancel in cancels:
                try:
                    answer = await self._ctx.gateway.cancel_meter_event(
                        cancel.event_name, cancel.identifier
                    )
                except PermanentStripeError as error:
                    await self._ctx.park(cancel.customer_id, error, result)
                    continue
                answered = True
                if answer is CancelAnswer.CANCELLED:
                    await self._ctx.store.write(
                        partial(
                            outbox.mark_cancelled,
                            identifier=cancel.identifier,
                            now=self._ctx.clock(),
                        )
                    )
                    CANCELLED.inc()
                    result.events_cancelled += 1
                    continue
                owed = await self._ctx.store.write(
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
        now = self._ctx.clock()
        stamps = {e.identifier: stripe_timestamp(e.window_start, now) for e in events}
        # Usage older than Stripe takes lands in a later month there: recorded for reconcile.
        late = {
            e.identifier: period_of(stamps[e.identifier])
            for e in events
            if period_of(stamps[e.identifier]) != period_of(e.window_start)
        }
        try:
            await self._ctx.gateway.send_meter_events(
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
                await self._ctx.park(customers[0], error, result)
                return
            for customer_id in customers:  # find the customer Stripe refuses
                await self._send([e for e in events if e.customer_id == customer_id], result)
            return
        await self._ctx.store.write(
            lambda c: outbox.mark_sent(c, [e.identifier for e in events], self._ctx.clock(), late)
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
