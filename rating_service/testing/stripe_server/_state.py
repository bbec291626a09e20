"""Everything the server remembers, and the inspection API tests read it through.

The state is plain Python, with no I/O and no clock of its own: every change
takes ``now`` (Unix seconds of the server's clock) from the caller, so a test
that moves the clock moves every window (identifier dedup, cancellation,
timestamps, session expiry) together. The HTTP layer is the only writer;
tests read through the methods below and may add customers directly.

Ids are deterministic: a prefix and a counter (``cus_test0000000001``), so a
failing test shows the same ids on every run.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._errors import JsonObject, StripeError, no_such
from ._grants import Grants
from ._meters import MeterEventRecord, Meters

SESSION_LIFETIME = 15 * 60
"""A meter event session's token is valid for 15 minutes (Stripe's figure)."""

ASYNC_ERROR_CODES = {
    "resource_missing": "meter_event_customer_not_found",
    "payload_no_customer_defined": "meter_event_no_customer_defined",
    "payload_no_value_defined": "meter_event_invalid_value",
    "payload_invalid_value": "meter_event_invalid_value",
}
"""Synchronous codes -> the codes of Stripe's asynchronous meter error reports."""


@dataclass(frozen=True)
class StreamRejection:
    """A stream event dropped by the (asynchronous, in Stripe) validation."""

    identifier: str | None
    event_name: str
    code: str
    message: str


class StripeState:
    """Customers, meters, meter events, credit grants and meter event sessions."""

    def __init__(self, *, strict_customers: bool = True) -> None:
        self.strict_customers = strict_customers
        """Refuse meter events and credit grants for customers the server does not know."""
        self._counters: Counter[str] = Counter()
        self._customers: dict[str, JsonObject] = {}
        self._sessions: dict[str, float] = {}
        self.meters = Meters(self.new_id)
        self.grants = Grants(self.new_id)
        self.stream_duplicates = 0
        """Stream events dropped because their identifier was seen in the last 24 hours."""
        self.stream_rejections: list[StreamRejection] = []
        """Stream events dropped for any other reason, with the code Stripe would report."""

    def new_id(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return f"{prefix}_test{self._counters[prefix]:010d}"

    # Customers

    def add_customer(self, customer_id: str | None = None, **fields: Any) -> JsonObject:
        """Create a customer, with the id a test picks (or a new one) and any fields."""
        customer_id = customer_id or self.new_id("cus")
        customer: JsonObject = {
            "id": customer_id,
            "object": "customer",
            "created": 0,
            "livemode": False,
            "metadata": {},
            **fields,
        }
        self._customers[customer_id] = customer
        return copy.deepcopy(customer)

    def customer(self, customer_id: str) -> JsonObject:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise no_such("customer", customer_id)
        return customer

    def knows_customer(self, customer_id: str) -> bool:
        return customer_id in self._customers

    def require_customer(self, customer_id: str, *, param: str) -> None:
        """Refuse an unknown customer with ``resource_missing`` (only in strict mode)."""
        if self.strict_customers and customer_id not in self._customers:
            raise no_such("customer", customer_id, param=param, status=400)

    # Meter event sessions (v2)

    def open_session(self, now: float) -> JsonObject:
        token = self.new_id("mes_tok")
        self._sessions[token] = now + SESSION_LIFETIME
        return {
            "id": self.new_id("mes"),
            "object": "v2.billing.meter_event_session",
            "authentication_token": token,
            "created": iso(now),
            "expires_at": iso(now + SESSION_LIFETIME),
            "livemode": False,
        }

    def session_valid(self, token: str, now: float) -> bool:
        expires_at = self._sessions.get(token)
        return expires_at is not None and now < expires_at

    def stream(self, events: list[Mapping[str, Any]], now: float) -> None:
        """Record stream events as Stripe would after its asynchronous validation.

        Each event has ``event_name``, ``payload`` and optionally ``identifier``
        and ``timestamp`` (already Unix seconds: the request's shape, its
        timestamps included, is checked synchronously before this).
        """
        for event in events:
            try:
                self.meters.record(
                    event["event_name"],
                    event["payload"],
                    event.get("identifier"),
                    event.get("timestamp"),
                    now,
                    source="stream",
                    known_customer=self.knows_customer if self.strict_customers else None,
                )
            except StripeError as error:
                if error.code == "duplicate_meter_event":
                    self.stream_duplicates += 1
                    continue
                code = error.code or "invalid_request_error"
                self.stream_rejections.append(
                    StreamRejection(
                        event.get("identifier"),
                        event["event_name"],
                        ASYNC_ERROR_CODES.get(code, code),
                        error.message,
                    )
                )

    # Inspection

    def meter_totals(self, customer: str, event_name: str) -> int:
        """What the meter adds up to for this customer, over all time (cancelled events excluded)."""
        return self.meters.aggregate(event_name, list(self.meters.counted(event_name, customer)))

    @property
    def events(self) -> list[MeterEventRecord]:
        """Every accepted meter event, cancelled ones included, in arrival order."""
        return self.meters.events()

    def grants_for(self, customer: str) -> list[JsonObject]:
        """The customer's credit grants as the API shows them, newest first."""
        return copy.deepcopy(self.grants.all(customer))

    @property
    def customers(self) -> list[str]:
        return list(self._customers)


def iso(moment: float) -> str:
    """Unix seconds -> the v2 API's timestamps (``2026-01-01T00:00:00.000Z``)."""
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> int:
    """A v2 timestamp -> Unix seconds; a 400 naming ``timestamp`` if it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StripeError(400, f"Invalid timestamp: {text}", param="timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
