"""The hash chain: each entry commits to its content and to the previous entry's hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from rating_service.domain.postings import Posting

GENESIS = "0" * 64
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""The encoding every hash in every ledger was made with (built once, not per call)."""


def entry_hash(
    prev_hash: str,
    customer_id: str,
    sequence: int,
    transaction_id: str,
    kind: str,
    outcome_type: str,
    outcome_id: str,
    request_id: str,
    bucket_id: str,
    units: int,
    amount_nanos: int,
    currency: str,
    occurred_at: int,
    recorded_at: int,
    postings: Iterable[Posting],
) -> str:
    """The entry's hash: its content, in this order, and its postings, compactly JSON-encoded.

    Arguments by position on the writer's hot path, by name where rows are read back.
    """
    content = [
        prev_hash,
        customer_id,
        sequence,
        transaction_id,
        kind,
        outcome_type,
        outcome_id,
        request_id,
        bucket_id,
        units,
        amount_nanos,
        currency,
        occurred_at,
        recorded_at,
        [[p.account, p.asset, p.amount] for p in postings],
    ]
    encoded = _COMPACT.encode(content).encode()
    return hashlib.sha256(encoded).hexdigest()
