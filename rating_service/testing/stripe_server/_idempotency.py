"""Stripe's ``Idempotency-Key`` semantics for POST requests.

As Stripe documents for v1: once an operation has begun executing, its
status and body are saved under the key for 24 hours (of the server clock),
whatever they were, errors included, and a request with the same key and
the same parameters gets them back with ``Idempotent-Replayed: true``. The
same key with other parameters, or on another endpoint, is a 400
``idempotency_error``; the same key while its first request is still
running is a 409 ``idempotency_key_in_use`` (the SDK retries 409s).

What never reaches this layer, and so is never saved: a missing API key
(401), an unknown route (404), parameters the spec refuses (400), rate
limits (429) and faults injected before the operation runs. A request
refused there can be retried with the same key and succeed, as on Stripe,
where the rate limiters and most parameter checks run before the
idempotency layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._errors import JsonObject, StripeError

WINDOW = 86_400
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class SavedResponse:
    status: int
    body: JsonObject
    headers: dict[str, str]


@dataclass
class _Entry:
    fingerprint: str
    created: float
    response: SavedResponse | None = None
    """None while the first request is still running."""


def fingerprint(method: str, path: str, params: Any) -> str:
    """What "the same request" means: endpoint and parameters, whatever their order."""
    return json.dumps([method, path, params], sort_keys=True, default=str)


class IdempotencyKeys:
    """Saved responses by key."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def begin(self, key: str, request: str, now: float) -> SavedResponse | None:
        """The saved response to replay, or None once the key is marked as running."""
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                400,
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters.",
                param="Idempotency-Key",
            )
        entry = self._entries.get(key)
        if entry is None or now - entry.created >= WINDOW:
            self._entries[key] = _Entry(request, now)
            return None
        if entry.fingerprint != request:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if you "
                "meant to execute a different request.",
                type="idempotency_error",
            )
        if entry.response is None:
            raise StripeError(
                409,
                "There is currently another in-progress request using this Idempotent "
                f"Key (that probably means you submitted twice, and the other request is "
                f"still going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        return entry.response

    def finish(self, key: str, response: SavedResponse) -> None:
        self._entries[key].response = response

    def abandon(self, key: str) -> None:
        """Forget a key whose operation never ran to the end (a bug, or a cancelled request)."""
        entry = self._entries.get(key)
        if entry is not None and entry.response is None:
            del self._entries[key]
