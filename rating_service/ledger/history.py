"""Reading a customer's chain in sequence order, page by page (an index range scan)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection, RowMapping

from rating_service.domain.money import Money
from rating_service.domain.postings import EntryKind, Posting
from rating_service.domain.results import Entry
from rating_service.ledger.codec import from_micros
from rating_service.ledger.schema import (
    customers,
    ledger_entries,
    ledger_postings,
    rate_card_versions,
)


def load_stored(
    conn: Connection, customer_id: str, *, after: int, limit: int
) -> list[tuple[RowMapping, tuple[Posting, ...]]]:
    """Up to ``limit`` entries with ``sequence > after``, as stored, each with its postings."""
    rows = (
        conn.execute(
            select(ledger_entries)
            .where(ledger_entries.c.customer_id == customer_id, ledger_entries.c.sequence > after)
            .order_by(ledger_entries.c.sequence)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    postings: dict[int, list[Posting]] = defaultdict(list)
    posting_rows = conn.execute(
        select(ledger_postings)
        .where(
            ledger_postings.c.customer_id == customer_id,
            ledger_postings.c.sequence > after,
            ledger_postings.c.sequence <= rows[-1]["sequence"],
        )
        .order_by(ledger_postings.c.sequence, ledger_postings.c.position)
    )
    for p in posting_rows:
        postings[p.sequence].append(Posting(p.account, p.asset, p.amount))
    return [(r, tuple(postings[r["sequence"]])) for r in rows]


def load_entries(conn: Connection, customer_id: str, *, after: int, limit: int) -> list[Entry]:
    """Up to ``limit`` entries with ``sequence > after``, each with its postings."""
    return [
        Entry(
            customer_id=r["customer_id"],
            sequence=r["sequence"],
            transaction_id=r["transaction_id"],
            kind=EntryKind(r["kind"]),
            outcome_type=r["outcome_type"],
            outcome_id=r["outcome_id"],
            request_id=r["request_id"],
            bucket_id=r["bucket_id"],
            units=r["units"],
            amount=Money(r["currency"], r["amount_nanos"]),
            occurred_at=from_micros(r["occurred_at"]),
            recorded_at=from_micros(r["recorded_at"]),
            postings=postings,
            prev_hash=r["prev_hash"],
            hash=r["hash"],
        )
        for r, postings in load_stored(conn, customer_id, after=after, limit=limit)
    ]


_LATEST = (
    select(func.max(ledger_entries.c.recorded_at)).select_from(
        customers.join(
            ledger_entries,
            and_(
                ledger_entries.c.customer_id == customers.c.customer_id,
                ledger_entries.c.sequence == customers.c.head_sequence,
            ),
        )
    ),
    select(func.max(customers.c.updated_at)),
    select(func.max(rate_card_versions.c.recorded_at)),
)


def latest_recorded_at(conn: Connection) -> datetime | None:
    """The latest instant the ledger holds (None when empty): of each chain's last entry,
    each customer and each rate-card version; one row per customer or version is read,
    never the chains themselves."""
    found = [t for t in (conn.execute(q).scalar() for q in _LATEST) if t is not None]
    return from_micros(max(found)) if found else None
