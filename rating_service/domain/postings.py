"""Double entry: each ledger transaction as postings that sum to zero per asset.

Every account belongs to one customer. Units are counted in the asset
``unit:<outcome_type>``, money in its ISO 4217 currency (as integer nanos).
``world`` is the contra account for what enters or leaves the customer's books:

    bucket:<id>:issued     -q  when a bucket is created (its mirror: available +q)
    bucket:<id>:available      units that can still be drawn
    bucket:<id>:held           units held by pending outcomes
    bucket:<id>:drawn          units consumed by outcomes or ConsumeBucket
    bucket:<id>:expired        units that expired with the bucket (or when it was voided)
    outcomes:pending           pending outcomes (units) ...
    charges:pending            ... and their charges (money)
    usage:<YYYY-MM>:outcomes   settled outcomes of the month, net of reversals
    usage:<YYYY-MM>:charged    their billable amount
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from rating_service.domain.buckets import Draw
from rating_service.domain.money import Money

WORLD = "world"
"""The contra account for what enters or leaves the customer's books. Its balance
is never stored (nothing reads it, and over the years it would grow past any
fixed range); every other money balance is bounded by a month or by what is
pending."""
OUTCOMES_PENDING = "outcomes:pending"
CHARGES_PENDING = "charges:pending"


class EntryKind(enum.Enum):
    OUTCOME_HELD = "OUTCOME_HELD"
    OUTCOME_RATED = "OUTCOME_RATED"
    OUTCOME_RELEASED = "OUTCOME_RELEASED"
    OUTCOME_REVERSED = "OUTCOME_REVERSED"
    BUCKET_CREATED = "BUCKET_CREATED"
    BUCKET_CONSUMED = "BUCKET_CONSUMED"
    BUCKET_EXPIRED = "BUCKET_EXPIRED"
    BUCKET_VOIDED = "BUCKET_VOIDED"


@dataclass(frozen=True)
class Posting:
    account: str
    asset: str
    amount: int


@dataclass(frozen=True)
class Transaction:
    """A ledger transaction before the ledger gives it a sequence and a hash."""

    kind: EntryKind
    occurred_at: datetime
    postings: tuple[Posting, ...]
    outcome_type: str = ""
    outcome_id: str = ""
    request_id: str = ""
    bucket_id: str = ""
    units: int = 0
    amount: Money | None = None
    unit_price: Money | None = None
    """An outcome's rate-card price (outcome transactions only). Not part of the entry or its
    hash: it keys the ledger's daily usage counts (``billing.usage_of``)."""


_UNIT = "unit:"
_BUCKET = "bucket:"


def unit_asset(outcome_type: str) -> str:
    return f"{_UNIT}{outcome_type}"


def is_unit_asset(asset: str) -> bool:
    """Units of an outcome type, as opposed to money in a currency."""
    return asset.startswith(_UNIT)


def outcome_type_of(asset: str) -> str:
    """The outcome type a unit asset counts (``unit_asset``'s inverse)."""
    if not is_unit_asset(asset):
        raise ValueError(f"{asset!r} is not a unit asset")
    return asset[len(_UNIT) :]


def bucket_account(bucket_id: str, part: str) -> str:
    return f"{_BUCKET}{bucket_id}:{part}"


def bucket_account_affixes(part: str) -> tuple[str, str]:
    """What comes before and after the bucket id in ``bucket_account(id, part)``.

    For a query that builds the account from a bucket's id column, so the
    spelling stays defined here alone.
    """
    before, _, after = bucket_account("\0", part).partition("\0")
    return before, after


def unit_asset_prefix() -> str:
    """What comes before the outcome type in ``unit_asset`` (for the same kind of query)."""
    return _UNIT


def period_of(at: datetime) -> str:
    """The calendar month (UTC) an instant falls in, as ``YYYY-MM``."""
    utc = at.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


def usage_outcomes(period: str) -> str:
    return f"usage:{period}:outcomes"


def usage_charged(period: str) -> str:
    return f"usage:{period}:charged"


def is_balanced(postings: Iterable[Posting]) -> bool:
    totals: dict[str, int] = defaultdict(int)
    for p in postings:
        totals[p.asset] += p.amount
    return all(v == 0 for v in totals.values())


def _move(asset: str, source: str, target: str, amount: int) -> list[Posting]:
    """``amount`` of ``asset`` from ``source`` to ``target``; nothing when zero."""
    if amount == 0:
        return []
    return [Posting(source, asset, -amount), Posting(target, asset, amount)]


def _bucket_move(
    asset: str, bucket_id: str, source: str, target: str, amount: int
) -> list[Posting]:
    return _move(
        asset, bucket_account(bucket_id, source), bucket_account(bucket_id, target), amount
    )


def _seal(
    kind: EntryKind,
    occurred_at: datetime,
    moves: list[Posting],
    *,
    outcome_type: str,
    outcome_id: str = "",
    request_id: str = "",
    bucket_id: str = "",
    units: int = 0,
    amount: Money | None = None,
    unit_price: Money | None = None,
) -> Transaction:
    if not is_balanced(moves):
        raise AssertionError(f"unbalanced {kind}: {moves}")
    return Transaction(
        kind=kind,
        occurred_at=occurred_at,
        postings=tuple(moves),
        outcome_type=outcome_type,
        outcome_id=outcome_id,
        request_id=request_id,
        bucket_id=bucket_id,
        units=units,
        amount=amount,
        unit_price=unit_price,
    )


@dataclass(frozen=True)
class OutcomeTake:
    """What an outcome takes, as the postings builders need it."""

    outcome_id: str
    outcome_type: str
    bucket_id: str | None
    charge: Money
    unit_price: Money
    """Its rate-card price (the charge, unless a bucket covered it)."""


def bucket_created(bucket_id: str, outcome_type: str, quantity: int, at: datetime) -> Transaction:
    asset = unit_asset(outcome_type)
    moves = _bucket_move(asset, bucket_id, "issued", "available", quantity)
    return _seal(
        EntryKind.BUCKET_CREATED,
        at,
        moves,
        bucket_id=bucket_id,
        outcome_type=outcome_type,
        units=quantity,
    )


def bucket_consumed(
    request_id: str, outcome_type: str, draws: Iterable[Draw], at: datetime
) -> Transaction:
    asset = unit_asset(outcome_type)
    moves: list[Posting] = []
    draws = list(draws)
    for d in draws:
        moves += _bucket_move(asset, d.bucket_id, "available", "drawn", d.units)
    return _seal(
        EntryKind.BUCKET_CONSUMED,
        at,
        moves,
        request_id=request_id,
        outcome_type=outcome_type,
        bucket_id=draws[0].bucket_id if len(draws) == 1 else "",
        units=sum(d.units for d in draws),
    )


def bucket_expired(bucket_id: str, outcome_type: str, units: int, at: datetime) -> Transaction:
    moves = _bucket_move(unit_asset(outcome_type), bucket_id, "available", "expired", units)
    return _seal(
        EntryKind.BUCKET_EXPIRED,
        at,
        moves,
        bucket_id=bucket_id,
        outcome_type=outcome_type,
        units=units,
    )


def bucket_voided(bucket_id: str, outcome_type: str, units: int, at: datetime) -> Transaction:
    """A bucket ended early: its ``units`` undrawn units expire now (none: a bare record)."""
    moves = _bucket_move(unit_asset(outcome_type), bucket_id, "available", "expired", units)
    return _seal(
        EntryKind.BUCKET_VOIDED,
        at,
        moves,
        bucket_id=bucket_id,
        outcome_type=outcome_type,
        units=units,
    )


def _seal_outcome(
    kind: EntryKind,
    take: OutcomeTake,
    at: datetime,
    moves: list[Posting],
    units: int,
    amount: Money,
) -> Transaction:
    return _seal(
        kind,
        at,
        moves,
        outcome_id=take.outcome_id,
        outcome_type=take.outcome_type,
        bucket_id=take.bucket_id or "",
        units=units,
        amount=amount,
        unit_price=take.unit_price,
    )


def outcome_held(take: OutcomeTake, at: datetime) -> Transaction:
    """A pending outcome: counted as pending, its unit held or its charge pending."""
    asset = unit_asset(take.outcome_type)
    moves = _move(asset, WORLD, OUTCOMES_PENDING, 1)
    if take.bucket_id:
        moves += _bucket_move(asset, take.bucket_id, "available", "held", 1)
    moves += _move(take.charge.currency, WORLD, CHARGES_PENDING, take.charge.nanos)
    return _seal_outcome(EntryKind.OUTCOME_HELD, take, at, moves, 1, take.charge)


def outcome_rated(take: OutcomeTake, at: datetime, *, was_pending: bool) -> Transaction:
    """A settled outcome, counted in the usage of the month it settles in."""
    asset = unit_asset(take.outcome_type)
    period = period_of(at)
    moves = _move(asset, OUTCOMES_PENDING if was_pending else WORLD, usage_outcomes(period), 1)
    if take.bucket_id:
        source = "held" if was_pending else "available"
        moves += _bucket_move(asset, take.bucket_id, source, "drawn", 1)
    moves += _move(
        take.charge.currency,
        CHARGES_PENDING if was_pending else WORLD,
        usage_charged(period),
        take.charge.nanos,
    )
    return _seal_outcome(EntryKind.OUTCOME_RATED, take, at, moves, 1, take.charge)


def _give_back(asset: str, take: OutcomeTake, source: str, bucket_expired: bool) -> list[Posting]:
    """The unit goes back to its bucket; to an expired bucket it expires with it at once."""
    if not take.bucket_id:
        return []
    moves = _bucket_move(asset, take.bucket_id, source, "available", 1)
    if bucket_expired:
        moves += _bucket_move(asset, take.bucket_id, "available", "expired", 1)
    return moves


def outcome_released(take: OutcomeTake, at: datetime, *, bucket_expired: bool) -> Transaction:
    """A pending outcome reversed: every hold goes back, nothing is charged."""
    asset = unit_asset(take.outcome_type)
    moves = _move(asset, OUTCOMES_PENDING, WORLD, 1)
    moves += _give_back(asset, take, "held", bucket_expired)
    moves += _move(take.charge.currency, CHARGES_PENDING, WORLD, take.charge.nanos)
    zero = Money.zero(take.charge.currency)
    return _seal_outcome(EntryKind.OUTCOME_RELEASED, take, at, moves, -1, zero)


def outcome_reversed(take: OutcomeTake, at: datetime, *, bucket_expired: bool) -> Transaction:
    """A settled outcome reversed, in the month of the reversal: unit or charge given back."""
    asset = unit_asset(take.outcome_type)
    period = period_of(at)
    moves = _move(asset, usage_outcomes(period), WORLD, 1)
    moves += _give_back(asset, take, "drawn", bucket_expired)
    moves += _move(take.charge.currency, usage_charged(period), WORLD, take.charge.nanos)
    return _seal_outcome(EntryKind.OUTCOME_REVERSED, take, at, moves, -1, -take.charge)
