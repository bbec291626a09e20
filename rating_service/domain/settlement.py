"""When a pending outcome settles: the period it counts in depends on it."""

from __future__ import annotations

from datetime import datetime


def settlement_time(
    due: datetime, recorded: datetime, confirmed_at: datetime | None = None
) -> datetime:
    """Confirmed (or its window over, whichever is first), but never before it was recorded.

    A pending outcome recorded after its window had already passed settles when
    it is recorded, so it never lands in a month that closed before we knew of it.
    """
    at = due if confirmed_at is None else min(confirmed_at, due)
    return max(at, recorded)
