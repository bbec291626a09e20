"""Queries that load domain values; each costs the same however long the ledger is."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, literal, select
from sqlalchemy.sql import FromClause, Select
from sqlalchemy.sql.elements import ColumnElement

from rating_service.domain.buckets import Bucket, BucketSource
from rating_service.domain.errors import CustomerNotFound
from rating_service.domain.money import Money
from rating_service.domain.postings import bucket_account_affixes, unit_asset_prefix
from rating_service.domain.ratecard import Price, RateCardVersion
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import Executor, RowLike
from rating_service.ledger.schema import balances, buckets, customers, rate_card_versions


@dataclass
class CustomerHead:
    """A customer row: its chain's head moves as transactions are appended."""

    customer_id: str
    stripe_customer_id: str
    rate_card_id: str
    head_sequence: int
    head_hash: str
    created_at: int
    updated_at: int


# Hot-path statements are built once: building a statement costs more than running it.
_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("customer_id"))
_CUSTOMER_FOR_UPDATE = _CUSTOMER.with_for_update()


_LOCK_CUSTOMERS = (
    select(customers)
    .where(customers.c.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(customers.c.customer_id)
    .with_for_update()
)


def lock_customers(sql: Executor, customer_ids: Iterable[str]) -> list[CustomerHead]:
    """Lock these customers' rows in one statement, in id order (PostgreSQL).

    Every transaction that takes its customers' locks in the same order can
    wait for another but never deadlock with it: replicas sharing one ledger
    group many callers, so many customers, into each transaction.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    return [_head_from_row(row) for row in sql.all(_LOCK_CUSTOMERS, {"ids": ids})]


def load_customer(sql: Executor, customer_id: str, *, for_update: bool = False) -> CustomerHead:
    """The customer's row; ``for_update`` locks it (PostgreSQL) to serialise its chain."""
    locked = for_update and sql.conn.dialect.name == "postgresql"
    query = _CUSTOMER_FOR_UPDATE if locked else _CUSTOMER
    row = sql.first(query, {"customer_id": customer_id})
    if row is None:
        raise CustomerNotFound(f"customer {customer_id!r} does not exist", customer_id=customer_id)
    return _head_from_row(row)


def _head_from_row(row: RowLike) -> CustomerHead:
    return CustomerHead(
        customer_id=row["customer_id"],
        stripe_customer_id=row["stripe_customer_id"],
        rate_card_id=row["rate_card_id"],
        head_sequence=row["head_sequence"],
        head_hash=row["head_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def version_from_row(row: RowLike) -> RateCardVersion:
    currency = row["currency"]
    prices = {
        outcome_type: Price(outcome_type, Money(currency, nanos), timedelta(microseconds=window))
        for outcome_type, nanos, window in json.loads(row["prices"])
    }
    return RateCardVersion(
        row["rate_card_id"], from_micros(row["effective_from"]), currency, prices
    )


def encode_prices(version: RateCardVersion) -> str:
    return json.dumps(
        [
            [p.outcome_type, p.unit_price.nanos, p.settlement_window // timedelta(microseconds=1)]
            for p in sorted(version.prices.values(), key=lambda p: p.outcome_type)
        ]
    )


_VERSION_IN_FORCE = (
    select(rate_card_versions)
    .where(
        rate_card_versions.c.rate_card_id == bindparam("rate_card_id"),
        rate_card_versions.c.effective_from <= bindparam("at"),
    )
    .order_by(rate_card_versions.c.effective_from.desc())
    .limit(1)
)


def load_version_in_force(sql: Executor, rate_card_id: str, at: datetime) -> RateCardVersion | None:
    """The newest version with ``effective_from <= at`` (one index seek)."""
    if not rate_card_id:
        return None
    row = sql.first(_VERSION_IN_FORCE, {"rate_card_id": rate_card_id, "at": to_micros(at)})
    return None if row is None else version_from_row(row)


_VERSIONS = (
    select(rate_card_versions)
    .where(rate_card_versions.c.rate_card_id == bindparam("rate_card_id"))
    .order_by(rate_card_versions.c.effective_from)
)


_FIRST_VERSION = _VERSIONS.limit(1)


def load_versions(sql: Executor, rate_card_id: str) -> list[RateCardVersion]:
    """Every version of a card, oldest first (a card changes price rarely: a few rows)."""
    if not rate_card_id:
        return []
    return [version_from_row(r) for r in sql.all(_VERSIONS, {"rate_card_id": rate_card_id})]


def load_first_version(sql: Executor, rate_card_id: str) -> RateCardVersion | None:
    """The earliest version: what a card will price in before any version is in force."""
    if not rate_card_id:
        return None
    row = sql.first(_FIRST_VERSION, {"rate_card_id": rate_card_id})
    return None if row is None else version_from_row(row)


_available = balances.alias("available")
_held = balances.alias("held")


def _balance_join(table: FromClause, part: str) -> ColumnElement[bool]:
    """Joins a bucket to its balance ``bucket_account(id, part)`` (one primary-key seek)."""
    before, after = bucket_account_affixes(part)
    return and_(
        table.c.customer_id == buckets.c.customer_id,
        table.c.account == literal(before) + buckets.c.bucket_id + literal(after),
        table.c.asset == literal(unit_asset_prefix()) + buckets.c.outcome_type,
    )


_BUCKET_COLUMNS = (
    buckets,
    _available.c.amount.label("remaining"),
    _held.c.amount.label("held"),
)


def _bucket_query() -> Select[Any]:
    return (
        select(*_BUCKET_COLUMNS)
        .select_from(buckets)
        .outerjoin(_available, _balance_join(_available, "available"))
        .outerjoin(_held, _balance_join(_held, "held"))
    )


def bucket_from_row(row: RowLike) -> Bucket:
    return Bucket(
        bucket_id=row["bucket_id"],
        outcome_type=row["outcome_type"],
        quantity=row["quantity"],
        remaining=row["remaining"] or 0,
        held=row["held"] or 0,
        valid_from=from_micros(row["valid_from"]),
        valid_until=from_micros(row["valid_until"]),
        unit_price=Money(row["currency"], row["unit_price_nanos"]),
        source=BucketSource(row["source"]),
        priority=row["priority"],
        created_sequence=row["created_sequence"],
    )


_UNEXPIRED_OF_TYPE = _bucket_query().where(
    buckets.c.customer_id == bindparam("customer_id"),
    buckets.c.outcome_type == bindparam("outcome_type"),
    buckets.c.valid_until > bindparam("at"),
)


def load_unexpired_buckets(
    sql: Executor, customer_id: str, outcome_type: str, at: datetime
) -> list[Bucket]:
    """Buckets of one type not yet expired at ``at``, drawn or not (one index range)."""
    params = {"customer_id": customer_id, "outcome_type": outcome_type, "at": to_micros(at)}
    return [bucket_from_row(r) for r in sql.all(_UNEXPIRED_OF_TYPE, params)]


def load_drawable_buckets(
    sql: Executor, customer_id: str, outcome_type: str, at: datetime
) -> list[Bucket]:
    """Buckets of one type valid at ``at`` with units left (the domain orders them)."""
    return [
        b
        for b in load_unexpired_buckets(sql, customer_id, outcome_type, at)
        if b.remaining > 0 and b.is_valid_at(at)
    ]


_BUCKET = _bucket_query().where(
    buckets.c.customer_id == bindparam("customer_id"),
    buckets.c.bucket_id == bindparam("bucket_id"),
)
_ALL_BUCKETS = _bucket_query().where(buckets.c.customer_id == bindparam("customer_id"))


def load_bucket(sql: Executor, customer_id: str, bucket_id: str) -> Bucket | None:
    row = sql.first(_BUCKET, {"customer_id": customer_id, "bucket_id": bucket_id})
    return None if row is None else bucket_from_row(row)


def load_all_buckets(sql: Executor, customer_id: str) -> list[Bucket]:
    return [bucket_from_row(r) for r in sql.all(_ALL_BUCKETS, {"customer_id": customer_id})]


_BALANCES = select(balances.c.account, balances.c.asset, balances.c.amount).where(
    balances.c.customer_id == bindparam("customer_id"),
    balances.c.account.in_(bindparam("accounts", expanding=True)),
)


def load_balances(
    sql: Executor, customer_id: str, accounts: list[str]
) -> dict[tuple[str, str], int]:
    rows = sql.all(_BALANCES, {"customer_id": customer_id, "accounts": accounts})
    return {(r["account"], r["asset"]): r["amount"] for r in rows}
