"""One function per operation of the spec: validated parameters in, API object out.

Each handler gets the state and a :class:`Call` (parameters already checked
against the spec, path parameters, the server's ``now``) and returns the 200
body, or raises :class:`~._errors.StripeError`. HTTP, authentication,
idempotency, rate rules and faults are the caller's business (:mod:`._app`).
Every operation of the spec subset has a handler, so "in the spec" and
"served" are the same list (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import JsonObject, StripeError, invalid, no_such
from ._meters import EventSource, MeterEventRecord
from ._state import StripeState, iso, parse_iso

MAX_STREAM_EVENTS = 100


@dataclass(frozen=True)
class Call:
    params: dict[str, Any]
    path: dict[str, str]
    url: str
    now: float


Handler = Callable[[StripeState, Call], JsonObject]


def concurrency_key(
    state: StripeState, operation_id: str, params: Mapping[str, Any]
) -> tuple[str, str] | None:
    """(customer, event name) for a synchronous meter event call, else None."""
    if operation_id not in ("PostBillingMeterEvents", "PostV2BillingMeterEvents"):
        return None
    key = state.meters.customer_key(params["event_name"])
    customer = params["payload"].get(key) if key else None
    return None if customer is None else (customer, params["event_name"])


def page(items: list[JsonObject], params: Mapping[str, Any], url: str) -> JsonObject:
    """A Stripe list object: ``limit`` (1 to 100, default 10), ``starting_after``, ``ending_before``."""
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("limit must be between 1 and 100.", param="limit")
    ids = [item["id"] for item in items]
    for cursor in ("starting_after", "ending_before"):
        if cursor in params and params[cursor] not in ids:
            raise invalid(
                f"No such object: '{params[cursor]}'", param=cursor, code="resource_missing"
            )
    if "starting_after" in params:
        start = ids.index(params["starting_after"]) + 1
        data, has_more = items[start : start + limit], start + limit < len(items)
    elif "ending_before" in params:
        end = ids.index(params["ending_before"])
        data, has_more = items[max(0, end - limit) : end], end - limit > 0
    else:
        data, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _meter_event_v1(event: MeterEventRecord) -> JsonObject:
    return {
        "object": "billing.meter_event",
        "created": int(event.created),
        "event_name": event.event_name,
        "identifier": event.identifier,
        "livemode": False,
        "payload": dict(event.payload),
        "timestamp": event.timestamp,
    }


def _record(
    state: StripeState, call: Call, timestamp: int | None, source: EventSource
) -> MeterEventRecord:
    return state.meters.record(
        call.params["event_name"],
        call.params["payload"],
        call.params.get("identifier"),
        timestamp,
        call.now,
        source=source,
        known_customer=state.knows_customer if state.strict_customers else None,
    )


def create_meter_event(state: StripeState, call: Call) -> JsonObject:
    return _meter_event_v1(_record(state, call, call.params.get("timestamp"), "v1"))


def create_meter_event_v2(state: StripeState, call: Call) -> JsonObject:
    raw = call.params.get("timestamp")
    event = _record(state, call, None if raw is None else parse_iso(raw), "v2")
    return {
        **_meter_event_v1(event),
        "object": "v2.billing.meter_event",
        "created": iso(event.created),
        "timestamp": iso(event.timestamp),
    }


def _cancel(state: StripeState, call: Call) -> MeterEventRecord:
    identifier = call.params.get("cancel", {}).get("identifier")
    if identifier is None:
        raise invalid(
            "Missing required param: cancel[identifier].",
            param="cancel[identifier]",
            code="parameter_missing",
        )
    return state.meters.cancel(call.params["event_name"], identifier, call.now)


def create_adjustment(state: StripeState, call: Call) -> JsonObject:
    event = _cancel(state, call)
    return {
        "object": "billing.meter_event_adjustment",
        "cancel": {"identifier": event.identifier},
        "event_name": event.event_name,
        "livemode": False,
        "status": "pending",
        "type": "cancel",
    }


def create_adjustment_v2(state: StripeState, call: Call) -> JsonObject:
    event = _cancel(state, call)
    return {
        "id": state.new_id("mtradj"),
        "object": "v2.billing.meter_event_adjustment",
        "cancel": {"identifier": event.identifier},
        "created": iso(call.now),
        "event_name": event.event_name,
        "livemode": False,
        "status": "pending",
        "type": "cancel",
    }


def stream_meter_events(state: StripeState, call: Call) -> JsonObject:
    events = call.params["events"]
    if not 1 <= len(events) <= MAX_STREAM_EVENTS:
        raise invalid(f"events takes 1 to {MAX_STREAM_EVENTS} events.", param="events")
    parsed = []
    for index, event in enumerate(events):
        if "timestamp" in event:
            try:
                event = {**event, "timestamp": parse_iso(event["timestamp"])}
            except StripeError:
                raise invalid(
                    f"Invalid timestamp: {event['timestamp']}", param=f"events[{index}][timestamp]"
                ) from None
        parsed.append(event)
    state.stream(parsed, call.now)
    return {}


def create_customer(state: StripeState, call: Call) -> JsonObject:
    fields = {k: v for k, v in call.params.items() if k != "expand"}
    return state.add_customer(None, **{**fields, "created": int(call.now)})


def create_grant(state: StripeState, call: Call) -> JsonObject:
    customer = call.params.get("customer")
    if customer is None:
        raise invalid(
            "Missing required param: customer.", param="customer", code="parameter_missing"
        )
    state.require_customer(customer, param="customer")
    return state.grants.create(customer, call.params, call.now)


def list_grants(state: StripeState, call: Call) -> JsonObject:
    return page(state.grants.all(call.params.get("customer")), call.params, call.url)


def balance_summary(state: StripeState, call: Call) -> JsonObject:
    customer = call.params.get("customer")
    if customer is None:
        raise invalid(
            "Missing required param: customer.", param="customer", code="parameter_missing"
        )
    state.require_customer(customer, param="customer")
    return state.grants.balance_summary(customer, call.params["filter"], call.now)


def event_summaries(state: StripeState, call: Call) -> JsonObject:
    p = call.params
    summaries = state.meters.summaries(
        call.path["id"],
        p["customer"],
        p["start_time"],
        p["end_time"],
        p.get("value_grouping_window"),
    )
    return page(summaries, p, call.url)


def list_meters(state: StripeState, call: Call) -> JsonObject:
    status = call.params.get("status")
    meters = [m for m in state.meters.all() if status in (None, m["status"])]
    return page(meters, call.params, call.url)


def _missing_transaction(state: StripeState, call: Call) -> JsonObject:
    raise no_such("credit balance transaction", call.path["id"])


OPERATIONS: dict[str, Handler] = {
    "PostCustomers": create_customer,
    "GetCustomersCustomer": lambda s, c: s.customer(c.path["customer"]),
    "PostBillingMeters": lambda s, c: s.meters.create(c.params, c.now),
    "GetBillingMeters": list_meters,
    "GetBillingMetersId": lambda s, c: s.meters.get(c.path["id"]),
    "PostBillingMetersId": lambda s, c: s.meters.rename(
        c.path["id"], c.params.get("display_name"), c.now
    ),
    "PostBillingMetersIdDeactivate": lambda s, c: s.meters.set_active(c.path["id"], False, c.now),
    "PostBillingMetersIdReactivate": lambda s, c: s.meters.set_active(c.path["id"], True, c.now),
    "GetBillingMetersIdEventSummaries": event_summaries,
    "PostBillingMeterEvents": create_meter_event,
    "PostBillingMeterEventAdjustments": create_adjustment,
    "PostBillingCreditGrants": create_grant,
    "GetBillingCreditGrants": list_grants,
    "GetBillingCreditGrantsId": lambda s, c: s.grants.get(c.path["id"]),
    "PostBillingCreditGrantsId": lambda s, c: s.grants.update(c.path["id"], c.params, c.now),
    "PostBillingCreditGrantsIdVoid": lambda s, c: s.grants.void(c.path["id"], c.now),
    "PostBillingCreditGrantsIdExpire": lambda s, c: s.grants.expire(c.path["id"], c.now),
    "GetBillingCreditBalanceSummary": balance_summary,
    # The spec gives this list's url the pattern ^/v1/billing/credit_grants: so be it.
    "GetBillingCreditBalanceTransactions": lambda s, c: page(
        [], c.params, "/v1/billing/credit_grants"
    ),
    "GetBillingCreditBalanceTransactionsId": _missing_transaction,
    "PostV2BillingMeterEventSession": lambda s, c: s.open_session(c.now),
    "PostV2BillingMeterEventStream": stream_meter_events,
    "PostV2BillingMeterEvents": create_meter_event_v2,
    "PostV2BillingMeterEventAdjustments": create_adjustment_v2,
}
