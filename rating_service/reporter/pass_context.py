"""What every step of a reporter pass shares: the ledger, Stripe, the settings, the tally.

A customer Stripe does not know, or refuses permanently, is parked: its work
waits for an operator, the other customers' goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rating_service.ledger import outbox
from rating_service.reporter.gateway import Gateway, PermanentStripeError
from rating_service.reporter.settings import ReporterSettings
from rating_service.service.clock import Clock
from rating_service.service.store import LedgerStore

log = logging.getLogger(__name__)

PAGE = 100
"""Rows a step reads per query."""


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


@dataclass(frozen=True)
class PassContext:
    store: LedgerStore
    gateway: Gateway
    settings: ReporterSettings
    clock: Clock

    async def verified(self, customer_id: str, stripe_customer_id: str, result: PassResult) -> bool:
        """Ask Stripe once whether it knows the customer; park it if not."""
        try:
            await self.gateway.ensure_customer(stripe_customer_id)
        except PermanentStripeError as error:
            await self.park(customer_id, error, result)
            return False
        await self.store.write(
            lambda c: outbox.mark_verified(c, customer_id, stripe_customer_id, self.clock())
        )
        return True

    async def park(self, customer_id: str, error: Exception, result: PassResult) -> None:
        log.error("parking Stripe reporting of customer %r: %s", customer_id, error)
        result.parked += 1
        await self.store.write(lambda c: outbox.park(c, customer_id, str(error), self.clock()))
