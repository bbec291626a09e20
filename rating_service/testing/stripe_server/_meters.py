"""Billing meters, the meter events recorded against them, and their summaries.

The rules are Stripe's (see ``../shared/design/stripe.md`` and the spec's
descriptions), applied synchronously and checked in this order, each with
the ``code`` named after Stripe's own error for the same condition (the
codes of the synchronous v2 endpoint, ``/v2/billing/meter_events``):

1. ``event_name`` names an active meter (``no_meter``, ``archived_meter``);
2. the payload has the meter's customer key (``payload_no_customer_defined``);
3. the value is a whole positive number written as a string, except for a
   ``count`` meter, where it is optional (``payload_no_value_defined``,
   ``payload_invalid_value``);
4. ``timestamp`` is within the past 35 days and at most 5 minutes ahead of
   the server clock (``timestamp_too_far_in_past``, ``timestamp_in_future``);
5. ``identifier`` was not received in the last 24 hours of the server clock
   (``duplicate_meter_event``: see the README for why this code);
6. the customer exists, when the caller asks for that check
   (``resource_missing``).

A cancelled event stops counting but keeps its identifier: it cannot be
sent again within the same 24 hours (the conservative reading of Stripe's
"uniqueness within a rolling period of at least 24 hours").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ._errors import JsonObject, StripeError, invalid, no_such

DAY = 86_400
DEDUP_WINDOW = DAY
"""How long an identifier is remembered."""
CANCEL_WINDOW = DAY
"""How long after its arrival an event can be cancelled (the spec: "within 24 hours")."""
CANCEL_REFUSED = "invalid_cancel_configuration"
"""The code of a refused cancel: the spec's ``v2.error.invalid_cancel_configuration``."""
PAST_LIMIT = 35 * DAY
FUTURE_LIMIT = 5 * 60
_WHOLE = re.compile(r"[0-9]+")
_WINDOWS = {None: 60, "hour": 3_600, "day": DAY}

EventSource = Literal["v1", "v2", "stream"]


@dataclass(frozen=True)
class MeterEventRecord:
    """One accepted meter event, as the server keeps it."""

    identifier: str
    event_name: str
    customer: str
    value: int
    timestamp: int
    """When the usage happened (Unix seconds), as sent."""
    created: float
    """When the server received it (server clock): the dedup and cancel windows start here."""
    source: EventSource
    payload: Mapping[str, str]
    cancelled_at: float | None = None


class Meters:
    """Meters by id and event name, and every event received, in arrival order."""

    def __init__(self, new_id: Callable[[str], str]) -> None:
        self._new_id = new_id
        self._meters: dict[str, JsonObject] = {}
        self._events: list[MeterEventRecord] = []
        self._by_identifier: dict[str, int] = {}

    def create(self, params: Mapping[str, Any], now: float) -> JsonObject:
        event_name = params["event_name"]
        if any(m["event_name"] == event_name for m in self._meters.values()):
            raise invalid(
                f"A meter with event_name '{event_name}' already exists.",
                param="event_name",
                code="resource_already_exists",
            )
        mapping = params.get("customer_mapping", {})
        meter: JsonObject = {
            "id": self._new_id("mtr"),
            "object": "billing.meter",
            "created": int(now),
            "customer_mapping": {
                "event_payload_key": mapping.get("event_payload_key", "stripe_customer_id"),
                "type": mapping.get("type", "by_id"),
            },
            "default_aggregation": {"formula": params["default_aggregation"]["formula"]},
            "display_name": params["display_name"],
            "event_name": event_name,
            "event_time_window": params.get("event_time_window"),
            "livemode": False,
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": int(now),
            "value_settings": {
                "event_payload_key": params.get("value_settings", {}).get(
                    "event_payload_key", "value"
                )
            },
        }
        self._meters[meter["id"]] = meter
        return meter

    def get(self, meter_id: str) -> JsonObject:
        meter = self._meters.get(meter_id)
        if meter is None:
            raise no_such("billing meter", meter_id)
        return meter

    def all(self) -> list[JsonObject]:
        """Newest first, as Stripe lists."""
        return list(reversed(self._meters.values()))

    def by_event_name(self, event_name: str) -> JsonObject | None:
        return next((m for m in self._meters.values() if m["event_name"] == event_name), None)

    def rename(self, meter_id: str, display_name: str | None, now: float) -> JsonObject:
        meter = self.get(meter_id)
        if display_name is not None:
            meter["display_name"] = display_name
            meter["updated"] = int(now)
        return meter

    def set_active(self, meter_id: str, active: bool, now: float) -> JsonObject:
        meter = self.get(meter_id)
        meter["status"] = "active" if active else "inactive"
        meter["status_transitions"]["deactivated_at"] = None if active else int(now)
        meter["updated"] = int(now)
        return meter

    def customer_key(self, event_name: str) -> str | None:
        """The payload key that names the customer for this event name's meter."""
        meter = self.by_event_name(event_name)
        return None if meter is None else str(meter["customer_mapping"]["event_payload_key"])

    def record(
        self,
        event_name: str,
        payload: Mapping[str, str],
        identifier: str | None,
        timestamp: int | None,
        now: float,
        *,
        source: EventSource,
        known_customer: Callable[[str], bool] | None,
    ) -> MeterEventRecord:
        """Check an event against the rules (module docstring, in order) and keep it."""
        meter = self.by_event_name(event_name)
        if meter is None:
            raise invalid(
                f"No active meter was found for event_name '{event_name}'.",
                param="event_name",
                code="no_meter",
            )
        if meter["status"] != "active":
            raise invalid(
                f"The meter for event_name '{event_name}' is inactive.",
                param="event_name",
                code="archived_meter",
            )
        customer_key = meter["customer_mapping"]["event_payload_key"]
        customer = payload.get(customer_key)
        if not customer:
            raise invalid(
                f"The payload has no customer: '{customer_key}' is missing.",
                param=f"payload[{customer_key}]",
                code="payload_no_customer_defined",
            )
        value = _value(meter, payload)
        when = int(now) if timestamp is None else timestamp
        _check_timestamp(when, now)
        identifier = identifier or self._new_id("mevt")
        if self._seen_recently(identifier, now):
            raise StripeError(
                400,
                f"An event already exists with identifier {identifier}.",
                code="duplicate_meter_event",
                param="identifier",
                headers={"Stripe-Should-Retry": "false"},
            )
        if known_customer is not None and not known_customer(customer):
            raise no_such("customer", customer, param=f"payload[{customer_key}]", status=400)
        event = MeterEventRecord(
            identifier, event_name, customer, value, when, now, source, dict(payload)
        )
        self._by_identifier[identifier] = len(self._events)
        self._events.append(event)
        return event

    def cancel(self, event_name: str, identifier: str, now: float) -> MeterEventRecord:
        """Cancel the event with this identifier, within 24 hours of its arrival.

        Stripe's rules, from the spec (``POST /v2/billing/meter_event_adjustments``,
        ``cancel.identifier``: "You can only cancel events within 24 hours of
        Stripe receiving them"; ``type``: "Currently supports canceling a single
        event") and ``stripe.md``. Refusals, all 400:

        - no event with this identifier and event name: ``resource_missing``;
        - received 24 hours ago or more (server clock): ``invalid_cancel_configuration``
          (the one error the spec names for this endpoint), "...within 24 hours...";
        - already cancelled: ``invalid_cancel_configuration``, "...has already been
          canceled". *Assumption* (neither the spec nor Stripe's docs say what a
          second cancel answers): it is refused, with a message that says so, and
          nothing changes; a client that lost the first answer can tell "done"
          from "refused" by that message.

        A cancelled event stops counting in totals and summaries at once (Stripe
        answers ``status: pending`` and applies it shortly after).
        """
        index = self._by_identifier.get(identifier)
        event = None if index is None else self._events[index]
        if event is None or event.event_name != event_name:
            raise invalid(
                f"No meter event with identifier '{identifier}' for event_name "
                f"'{event_name}' can be cancelled.",
                param="cancel[identifier]",
                code="resource_missing",
            )
        if event.cancelled_at is not None:
            raise invalid(
                f"The meter event with identifier '{identifier}' has already been canceled.",
                param="cancel[identifier]",
                code=CANCEL_REFUSED,
            )
        if now - event.created >= CANCEL_WINDOW:
            raise invalid(
                "A meter event can only be cancelled within 24 hours of being received.",
                param="cancel[identifier]",
                code=CANCEL_REFUSED,
            )
        cancelled = replace(event, cancelled_at=now)
        self._events[self._by_identifier[identifier]] = cancelled
        return cancelled

    def events(self) -> list[MeterEventRecord]:
        return list(self._events)

    def counted(self, event_name: str, customer: str) -> Iterator[MeterEventRecord]:
        """The events that count: this meter's, this customer's, not cancelled."""
        for event in self._events:
            if (
                event.event_name == event_name
                and event.customer == customer
                and event.cancelled_at is None
            ):
                yield event

    def aggregate(self, event_name: str, events: list[MeterEventRecord]) -> int:
        """The meter's formula over these events (``sum``, ``count`` or ``last``)."""
        meter = self.by_event_name(event_name)
        formula = "sum" if meter is None else meter["default_aggregation"]["formula"]
        if formula == "count":
            return len(events)
        if formula == "last":
            return max(events, key=lambda e: (e.timestamp, e.created)).value if events else 0
        return sum(e.value for e in events)

    def summaries(
        self, meter_id: str, customer: str, start: int, end: int, window: str | None
    ) -> list[JsonObject]:
        """``aggregated_value`` per window of ``[start, end)``, oldest window first."""
        meter = self.get(meter_id)
        step = _WINDOWS[window]
        unit = {60: "minute", 3_600: "hour", DAY: "day"}[step]
        for name, moment in (("start_time", start), ("end_time", end)):
            if moment % step:
                raise invalid(f"{name} must be aligned with {unit} boundaries.", param=name)
        if end <= start:
            raise invalid("end_time must be after start_time.", param="end_time")
        events = list(self.counted(meter["event_name"], customer))
        bounds = (
            [(start, end)] if window is None else [(t, t + step) for t in range(start, end, step)]
        )
        return [
            {
                "id": f"mtrsum_{meter_id}_{low}_{high}",
                "object": "billing.meter_event_summary",
                "aggregated_value": self.aggregate(
                    meter["event_name"], [e for e in events if low <= e.timestamp < high]
                ),
                "end_time": high,
                "livemode": False,
                "meter": meter_id,
                "start_time": low,
            }
            for low, high in bounds
        ]

    def _seen_recently(self, identifier: str, now: float) -> bool:
        index = self._by_identifier.get(identifier)
        return index is not None and now - self._events[index].created < DEDUP_WINDOW


def _value(meter: Mapping[str, Any], payload: Mapping[str, str]) -> int:
    key = meter["value_settings"]["event_payload_key"]
    raw = payload.get(key)
    if raw is None and meter["default_aggregation"]["formula"] == "count":
        return 1
    if raw is None:
        raise invalid(
            f"The payload has no value: '{key}' is missing.",
            param=f"payload[{key}]",
            code="payload_no_value_defined",
        )
    if not _WHOLE.fullmatch(raw) or int(raw) == 0:
        raise invalid(
            f"The value '{raw}' is not a whole positive number.",
            param=f"payload[{key}]",
            code="payload_invalid_value",
        )
    return int(raw)


def _check_timestamp(timestamp: int, now: float) -> None:
    if timestamp < now - PAST_LIMIT:
        raise invalid(
            "The timestamp must be within the past 35 days.",
            param="timestamp",
            code="timestamp_too_far_in_past",
        )
    if timestamp > now + FUTURE_LIMIT:
        raise invalid(
            "The timestamp must be at most 5 minutes in the future.",
            param="timestamp",
            code="timestamp_in_future",
        )
