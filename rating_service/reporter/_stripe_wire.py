"""Our values in Stripe's words and back: request parameters and API objects, no I/O.

Kept apart from the gateway so that what is sent (and what is refused
before sending) reads in one place. The rules are Stripe's:

- a stream event's ``timestamp`` is an ISO 8601 date-time (v2; v1 took Unix
  seconds), its ``value`` a whole positive number as a string, its
  ``identifier`` at most 100 characters. The stream validates *after*
  accepting a request and reports problems only as error-report events, so
  an event Stripe would drop is a ValueError here instead;
- credit grant times are Unix seconds, amounts integers of the minor unit,
  names at most 100 characters;
- summary bounds are Unix seconds on minute boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .gateway import CreditGrantSpec, CreditGrantView, MeterEvent

if TYPE_CHECKING:
    import stripe
    from stripe._stripe_object import UntypedStripeObject
    from stripe.params.billing import (
        CreditGrantCreateParams,
        CreditGrantCreateParamsApplicabilityConfigScope,
        MeterCreateParams,
    )
    from stripe.params.v2.billing import MeterEventStreamCreateParamsEvent

MAX_IDENTIFIER_LENGTH = 100
MAX_GRANT_NAME = 100
MINUTE = 60
GRANT_KEYS = ("rating_customer_id", "bucket_id", "grant_version")
"""The metadata that finds a bucket's grant (of one version) again."""
DEFAULT_METADATA = {"grant_version": "1"}
"""What a grant made before versions existed stands for: the bucket's first version."""
OWED_KEYS = ("rating_customer_id", "owed_back")
"""The metadata that finds a month's owed-back credit again."""


def stream_event(event: MeterEvent) -> MeterEventStreamCreateParamsEvent:
    """One event of a ``POST /v2/billing/meter_event_stream`` body."""
    if event.value < 1:
        raise ValueError(f"meter event {event.identifier}: value {event.value} is not positive")
    if not 1 <= len(event.identifier) <= MAX_IDENTIFIER_LENGTH:
        raise ValueError(
            f"meter event identifier {event.identifier!r} must have 1 to "
            f"{MAX_IDENTIFIER_LENGTH} characters"
        )
    when = aware(event.timestamp).astimezone(UTC).isoformat(timespec="milliseconds")
    return {
        "event_name": event.event_name,
        "identifier": event.identifier,
        "timestamp": when.replace("+00:00", "Z"),
        "payload": {"stripe_customer_id": event.stripe_customer_id, "value": str(event.value)},
    }


def grant_keys(grant: CreditGrantSpec) -> dict[str, str]:
    """The spec's ``rating_customer_id`` and ``bucket_id``; a ValueError if one is missing."""
    names = OWED_KEYS if "owed_back" in grant.metadata else GRANT_KEYS
    keys = {key: grant.metadata.get(key, DEFAULT_METADATA.get(key, "")) for key in names}
    if not all(keys.values()):
        raise ValueError(
            "a credit grant's metadata must carry rating_customer_id and bucket_id (or owed_back)"
        )
    return keys


def is_grant_for(existing: stripe.billing.CreditGrant, keys: Mapping[str, str]) -> bool:
    found = {**DEFAULT_METADATA, **metadata(existing.metadata)}
    return all(found.get(key) == value for key, value in keys.items())


def grant_params(grant: CreditGrantSpec) -> CreditGrantCreateParams:
    """``POST /v1/billing/credit_grants`` parameters for the spec."""
    scope: CreditGrantCreateParamsApplicabilityConfigScope = (
        {"prices": [{"id": price_id} for price_id in grant.price_ids]}
        if grant.price_ids
        else {"price_type": "metered"}
    )
    params: CreditGrantCreateParams = {
        "customer": grant.stripe_customer_id,
        "amount": {
            "type": "monetary",
            "monetary": {"currency": grant.currency.lower(), "value": grant.amount_minor},
        },
        "applicability_config": {"scope": scope},
        "category": grant.category,
        "effective_at": unix_floor(grant.effective_at),
        "name": grant_name(grant.name),
        "metadata": dict(grant.metadata),
    }
    if grant.expires_at is not None:
        params["expires_at"] = unix_floor(grant.expires_at)
    return params


def grant_name(name: str) -> str:
    """Stripe refuses names over 100 characters; a display name is not worth parking for."""
    return name if len(name) <= MAX_GRANT_NAME else name[: MAX_GRANT_NAME - 1] + "…"


def grant_view(grant: stripe.billing.CreditGrant) -> CreditGrantView:
    monetary = grant.amount.monetary
    customer = grant.customer if isinstance(grant.customer, str) else grant.customer.id
    return CreditGrantView(
        grant_id=grant.id,
        stripe_customer_id=customer,
        amount_minor=monetary.value if monetary is not None else 0,
        currency=monetary.currency if monetary is not None else "",
        effective_at=from_unix(grant.effective_at),
        expires_at=from_unix(grant.expires_at),
        voided=grant.voided_at is not None,
        metadata=metadata(grant.metadata),
    )


def meter_params(event_name: str, display_name: str) -> MeterCreateParams:
    """A ``sum`` meter of ``payload[value]``, customers by ``payload[stripe_customer_id]``."""
    return {
        "event_name": event_name,
        "display_name": display_name,
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "value_settings": {"event_payload_key": "value"},
    }


def minute_window(start: datetime, end: datetime) -> tuple[int, int]:
    """``[start, end)`` widened to minute boundaries: start floored, end ceiled (Unix seconds)."""
    return (
        unix_floor(start) // MINUTE * MINUTE,
        math.ceil(aware(end).timestamp() / MINUTE) * MINUTE,
    )


def metadata(values: UntypedStripeObject[str] | None) -> dict[str, str]:
    return {} if values is None else {str(k): str(v) for k, v in values.to_dict().items()}


def aware(moment: datetime) -> datetime:
    """The datetime itself, if it has a timezone; a naive one is a programming error."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, not {moment!r}")
    return moment


def unix_floor(moment: datetime) -> int:
    return math.floor(aware(moment).timestamp())


def from_unix(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def parse_iso(text: str) -> datetime:
    """A v2 timestamp (``2026-01-01T00:15:00.000Z``); UTC if it names no zone."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
