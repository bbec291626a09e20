"""The times a request may name: google.protobuf.Timestamp's range, to the microsecond.

``Timestamp`` allows 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
The ledger keeps instants as integer microseconds, so a time finer than a
microsecond is refused rather than silently cut (a retry differing by a
nanosecond would otherwise be taken for the same payload).
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
"""The beginning of time: where a rate card's first version starts when none is given."""
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest instant the ledger keeps."""
