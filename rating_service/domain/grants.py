"""What a bucket's credit grant in Stripe must be worth, as the ledger moves (pure).

Every outcome, covered or not, reaches Stripe as metered usage; a bucket's
grant pays for the covered ones when Stripe invoices. So the grant must be
worth exactly the units of the bucket that can still cover metered usage:

    quantity - units drawn by hand (``ConsumeBucket``: never metered)
             - units expired by a void (``VoidBucket``'s undrawn units, and
               units that come back to the voided bucket later: a held outcome
               released, a covered outcome reversed)

A unit drawn by an outcome stays in the grant (the outcome is metered and the
grant must cover it); a unit returned to a live bucket stays too (a later
outcome will draw it). A bucket that simply reaches ``valid_until`` needs no
change: its grant expires with it.

Stripe cannot lower a grant in place (an update changes only ``expires_at``
and ``metadata``), so a lower value is a new *version* of the grant: created
with an idempotency key of the bucket and the version, then every older grant
of the bucket is voided. Creating first keeps every covered outcome covered
at every moment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rating_service.domain.postings import EntryKind

_RETURNS = frozenset(
    {EntryKind.BUCKET_VOIDED, EntryKind.OUTCOME_RELEASED, EntryKind.OUTCOME_REVERSED}
)
"""Entries that can move units of a voided bucket to ``expired``."""


@dataclass(frozen=True)
class BucketMove:
    """Units an entry moved into one of a bucket's ``drawn`` or ``expired`` accounts."""

    sequence: int
    kind: EntryKind
    bucket_id: str
    part: str
    """``drawn`` or ``expired``."""
    units: int


def grant_reductions(moves: Iterable[BucketMove], voided_from: Mapping[str, int]) -> dict[str, int]:
    """Units each bucket's grant loses through ``moves``.

    ``voided_from`` maps a voided bucket to the sequence of its ``BUCKET_VOIDED``
    entry: from there on every unit reaching its ``expired`` account leaves the
    grant. Manual draws (``BUCKET_CONSUMED``) leave it whenever they happen.
    """
    lost: dict[str, int] = {}
    for move in moves:
        if move.units <= 0:
            continue
        manual = move.kind is EntryKind.BUCKET_CONSUMED and move.part == "drawn"
        void_from = voided_from.get(move.bucket_id)
        voided = (
            move.part == "expired"
            and move.kind in _RETURNS
            and void_from is not None
            and move.sequence >= void_from
        )
        if manual or voided:
            lost[move.bucket_id] = lost.get(move.bucket_id, 0) + move.units
    return lost


def may_lower_grants(kinds: Iterable[EntryKind], has_voided_bucket: bool) -> bool:
    """Whether entries of these kinds can lower a grant (else planning skips the question)."""
    kinds = set(kinds)
    return EntryKind.BUCKET_CONSUMED in kinds or (has_voided_bucket and bool(kinds & _RETURNS))


def grant_idempotency_key(customer_id: str, bucket_id: str, version: int = 1) -> str:
    """The key a bucket's ``version``-th grant is created with, on every attempt.

    Version 1 keeps the key grants had before versions existed.
    """
    digest = hashlib.sha256(f"{customer_id}\0{bucket_id}".encode()).hexdigest()
    key = f"rs-grant-{digest[:48]}"
    return key if version == 1 else f"{key}-v{version}"
