"""The one refusal every idempotent use case shares: a key reused with another payload."""

from __future__ import annotations

from rating_service.domain.errors import IdempotencyKeyReused


def reused(key: str, value: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        f"{key} {value!r} was already used with a different payload; nothing was written",
        key=key,
        value=value,
    )
