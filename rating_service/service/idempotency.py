"""The one refusal every idempotent use case shares: a key reused with another payload."""

from __future__ import annotations

from rating_service.domain.errors import IdempotencyKeyReused


def require_same_payload(stored: str, sent: str, key: str, value: str) -> None:
    """A retry must carry the payload the key was first used with (compared by fingerprint)."""
    if stored != sent:
        raise reused(key, value)


def reused(key: str, value: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        f"{key} {value!r} was already used with a different payload; nothing was written",
        key=key,
        value=value,
    )
