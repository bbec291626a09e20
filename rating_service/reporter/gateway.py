"""The reporter's seam to Stripe: what it asks of Stripe, in its own words.

The real implementation (``stripe_gateway.StripeGateway``) uses the official
``stripe`` SDK; the reporter only knows this interface and its two errors:
``TransientStripeError`` (back off and retry, forever) and
``PermanentStripeError`` (park the customer until a human fixes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Literal, Protocol


class StripeError(Exception):
    """Base of what the gateway raises; ``code`` is Stripe's error code when it gave one."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TransientStripeError(StripeError):
    """429, 5xx, timeouts, connection errors, an expired meter-event session: retry later."""


class PermanentStripeError(StripeError):
    """Stripe refused the request as such (unknown customer, invalid parameter): retrying won't help."""


class CancelAnswer(Enum):
    """What Stripe made of a meter event cancel."""

    CANCELLED = "cancelled"
    """Stripe has it cancelled, now or before (a retry after a lost answer)."""
    TOO_LATE = "too_late"
    """Stripe counts the event and keeps it: received 24 hours ago or more."""
    NOT_FOUND = "not_found"
    """Stripe has no event with this identifier on this meter."""


@dataclass(frozen=True)
class MeterEvent:
    """One aggregated usage report: ``value`` outcomes of one customer and meter in one window."""

    identifier: str
    event_name: str
    stripe_customer_id: str
    value: int
    timestamp: datetime


@dataclass(frozen=True)
class CreditGrantSpec:
    """A bucket's prepaid value, or what a closed month owes back, as a monetary credit grant."""

    idempotency_key: str
    stripe_customer_id: str
    amount_minor: int
    currency: str
    """ISO 4217, lower case as Stripe spells it (``usd``)."""
    category: Literal["paid", "promotional"]
    effective_at: datetime
    expires_at: datetime | None
    """None: the credit never expires (what a month owes back)."""
    name: str
    metadata: Mapping[str, str]
    """Carries ``rating_customer_id`` and ``bucket_id`` (a bucket's grant) or ``owed_back``
    (a month's owed-back credit): how an existing grant is found again."""
    price_ids: tuple[str, ...] = ()
    """Scope to these metered prices; empty means ``price_type=metered``."""


@dataclass(frozen=True)
class CreditGrantView:
    grant_id: str
    stripe_customer_id: str
    amount_minor: int
    currency: str
    effective_at: datetime | None
    expires_at: datetime | None
    voided: bool
    metadata: Mapping[str, str] = field(default_factory=dict)


class Gateway(Protocol):
    async def ensure_customer(self, stripe_customer_id: str) -> None:
        """Raises PermanentStripeError when Stripe does not know the customer."""

    async def send_meter_events(self, events: Sequence[MeterEvent]) -> None:
        """1 to 100 events in one call; duplicates of identifiers already delivered are fine."""

    async def cancel_meter_event(self, event_name: str, identifier: str) -> CancelAnswer:
        """Cancel a meter event; a refusal that retrying cannot change is an answer, not an error."""

    async def create_credit_grant(self, grant: CreditGrantSpec) -> str:
        """The grant's id; finds the grant created earlier for the same bucket instead of a second one."""

    async def void_credit_grant(self, grant_id: str) -> None: ...

    async def meter_ids(self) -> dict[str, str]:
        """Active meters by ``event_name``."""

    async def create_meter(self, event_name: str, display_name: str) -> str: ...

    async def meter_total(
        self, meter_id: str, stripe_customer_id: str, start: datetime, end: datetime
    ) -> int:
        """Sum of the meter's usage for the customer in ``[start, end)`` (minute-aligned)."""

    async def credit_grants(self, stripe_customer_id: str) -> list[CreditGrantView]: ...

    async def credit_balance(self, stripe_customer_id: str, grant_id: str) -> int:
        """What is left of one grant, in minor units: its amount less what invoices applied."""

    async def close(self) -> None: ...
