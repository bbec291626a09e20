"""Wakes alert watchers when this process commits an alert; other replicas' are found by polling.

Watchers read alerts from the ledger, never from here: the feed only says
"look again". A watcher notes ``version`` before it reads, then waits for a
newer one, so an alert committed between its read and its wait still wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib


class AlertFeedClosed(Exception):
    """The server is shutting down: a watch ends, and the caller watches again elsewhere."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down; watch again from the last alert_id received")


class AlertFeed:
    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()
        self._closed = False

    def notify(self) -> None:
        """Alerts were committed: wake every watcher."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """End every watch (``wait`` raises ``AlertFeedClosed``)."""
        self._closed = True
        self.notify()

    async def wait(self, seen: int, poll: float) -> None:
        """Return once ``version`` has passed ``seen`` or ``poll`` seconds have gone by."""
        if self._closed:
            raise AlertFeedClosed()
        if self.version == seen:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), poll)
        if self._closed:
            raise AlertFeedClosed()
