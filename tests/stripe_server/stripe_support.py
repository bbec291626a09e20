"""Request parameters the Stripe test server's tests build again and again."""

from __future__ import annotations

from typing import Any

CUSTOMER = "cus_a"
EVENT_NAME = "resolution"


def meter_event(
    value: str = "1",
    *,
    identifier: str | None = None,
    customer: str = CUSTOMER,
    timestamp: int | None = None,
    event_name: str = EVENT_NAME,
) -> dict[str, Any]:
    """``POST /v1/billing/meter_events`` parameters."""
    params: dict[str, Any] = {
        "event_name": event_name,
        "payload": {"stripe_customer_id": customer, "value": value},
    }
    if identifier is not None:
        params["identifier"] = identifier
    if timestamp is not None:
        params["timestamp"] = timestamp
    return params


def credit_grant(customer: str = CUSTOMER, value: int = 1000, **extra: Any) -> dict[str, Any]:
    """``POST /v1/billing/credit_grants`` parameters: ``value`` cents of usd for metered prices."""
    return {
        "customer": customer,
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        **extra,
    }
