"""Rate-card versions: append-only, one row per (card, effective_from)."""

from __future__ import annotations

import bisect
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select

from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price, RateCardVersion
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import RowLike
from rating_service.ledger.schema import rate_card_versions

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit


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


_IN_FORCE = (
    select(rate_card_versions)
    .where(
        rate_card_versions.c.rate_card_id == bindparam("rate_card_id"),
        rate_card_versions.c.effective_from <= bindparam("at"),
    )
    .order_by(rate_card_versions.c.effective_from.desc())
    .limit(1)
)
_VERSIONS = (
    select(rate_card_versions)
    .where(rate_card_versions.c.rate_card_id == bindparam("rate_card_id"))
    .order_by(rate_card_versions.c.effective_from)
)
_FIRST = _VERSIONS.limit(1)
_AT = select(rate_card_versions).where(
    rate_card_versions.c.rate_card_id == bindparam("rate_card_id"),
    rate_card_versions.c.effective_from == bindparam("effective_from"),
)
_INSERT = rate_card_versions.insert()


class RateCards:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def in_force(self, rate_card_id: str, at: datetime) -> RateCardVersion | None:
        """The newest version with ``effective_from <= at``.

        A write batch reads each card's versions once (a card changes price
        rarely: a few rows) and picks from memory; a read makes one index seek.
        """
        if not rate_card_id:
            return None
        caches = self._unit.caches
        if caches is None:
            row = self._unit.sql.first(
                _IN_FORCE, {"rate_card_id": rate_card_id, "at": to_micros(at)}
            )
            return None if row is None else version_from_row(row)
        cached = caches.versions.get(rate_card_id)
        if cached is None:
            versions = self.all(rate_card_id)
            cached = ([to_micros(v.effective_from) for v in versions], versions)
            caches.versions[rate_card_id] = cached
        starts, versions = cached
        index = bisect.bisect_right(starts, to_micros(at))
        return versions[index - 1] if index else None

    def all(self, rate_card_id: str) -> list[RateCardVersion]:
        """Every version of a card, oldest first."""
        rows = self._unit.sql.all(_VERSIONS, {"rate_card_id": rate_card_id})
        return [version_from_row(r) for r in rows]

    def first(self, rate_card_id: str) -> RateCardVersion | None:
        """The earliest version: what a card will price in before any version is in force."""
        if not rate_card_id:
            return None
        row = self._unit.sql.first(_FIRST, {"rate_card_id": rate_card_id})
        return None if row is None else version_from_row(row)

    def at(self, rate_card_id: str, effective_from: datetime) -> RateCardVersion | None:
        """The version that starts exactly at ``effective_from``, if any."""
        row = self._unit.db().first(
            _AT, {"rate_card_id": rate_card_id, "effective_from": to_micros(effective_from)}
        )
        return None if row is None else version_from_row(row)

    def add(self, version: RateCardVersion, recorded_at: datetime) -> None:
        self._unit.rate_card_changed(version.rate_card_id)
        self._unit.db_write().many(
            _INSERT,
            [
                {
                    "rate_card_id": version.rate_card_id,
                    "effective_from": to_micros(version.effective_from),
                    "currency": version.currency,
                    "prices": encode_prices(version),
                    "recorded_at": to_micros(recorded_at),
                }
            ],
        )
