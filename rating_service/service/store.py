"""The ledger store: every operation of the service as one database transaction.

Writes go through the group-commit writer; each job loads what it needs, asks
the domain what to do, and appends the result. Reads use their own snapshot
and never wait for the writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from rating_service.domain import postings as entries
from rating_service.domain.buckets import Draw, burn_down_key, plan_consumption
from rating_service.domain.commands import (
    DEFAULT_BUCKET_VALIDITY,
    MAX_QUANTITY,
    ConfirmOutcome,
    ConsumeBucket,
    CreateBucket,
    OutcomeState,
    PutCustomer,
    PutRateCard,
    RecordOutcome,
    ReverseOutcome,
)
from rating_service.domain.errors import (
    DomainError,
    IdempotencyKeyReused,
    InvalidArgument,
    OutcomeNotFound,
    OutcomeReversed,
)
from rating_service.domain.money import Money
from rating_service.domain.ratecard import RateCardVersion, require_version
from rating_service.domain.rating import Quote, quote, rate_outcome
from rating_service.domain.results import (
    Balance,
    BucketCreated,
    Consumed,
    Customer,
    CustomerPut,
    Entry,
    OutcomeConfirmed,
    OutcomeRecorded,
    OutcomeUndone,
    RateCardPut,
)
from rating_service.domain.settlement import settlement_time
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.engine import Engines
from rating_service.ledger.executor import Executor, RowLike
from rating_service.ledger.history import load_entries
from rating_service.ledger.lease import Lease, lease_for
from rating_service.ledger.reads import (
    CustomerHead,
    encode_prices,
    load_all_buckets,
    load_balances,
    load_bucket,
    load_customer,
    load_drawable_buckets,
    load_first_version,
    load_version_in_force,
    version_from_row,
)
from rating_service.ledger.schema import (
    buckets,
    consumptions,
    customers,
    outcomes,
    rate_card_versions,
)
from rating_service.ledger.session import WriteSession
from rating_service.ledger.writer import GroupCommitWriter

T = TypeVar("T")


_ATTRIBUTES = json.JSONEncoder(sort_keys=True)
"""How attributes are stored (``json.dumps(..., sort_keys=True)``), built once, not per call."""


def _reused(key: str, value: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        f"{key} {value!r} was already used with a different payload; nothing was written",
        key=key,
        value=value,
    )


_EXPIRED_SEQUENCE = select(buckets.c.expired_sequence).where(
    buckets.c.customer_id == bindparam("customer_id"),
    buckets.c.bucket_id == bindparam("bucket_id"),
)


def _expired_sequence(conn: Connection, customer_id: str, bucket_id: str) -> int | None:
    expired: int | None = conn.execute(
        _EXPIRED_SEQUENCE, {"customer_id": customer_id, "bucket_id": bucket_id}
    ).scalar_one()
    return expired


@dataclass(frozen=True)
class _Outcome:
    """An outcome's row, with what it took."""

    row: RowLike

    @property
    def take(self) -> entries.OutcomeTake:
        return entries.OutcomeTake(
            outcome_id=self.row["outcome_id"],
            outcome_type=self.row["outcome_type"],
            bucket_id=self.row["bucket_id"],
            charge=Money(self.row["currency"], self.row["charged_nanos"]),
        )

    @property
    def state(self) -> OutcomeState:
        return OutcomeState(self.row["state"])

    @property
    def due(self) -> datetime:
        """When its settlement window ends (pending outcomes only)."""
        return from_micros(self.row["settles_at"])

    @property
    def recorded(self) -> datetime:
        return from_micros(self.row["recorded_at"])


class LedgerStore:
    """The one interface the API, the sweeps and (later) the reporter use."""

    def __init__(self, engines: Engines, *, max_batch: int = 256) -> None:
        self._engines = engines
        self._writer = GroupCommitWriter(engines.writer, max_batch=max_batch)

    def start(self) -> None:
        self._writer.start()

    def lease(self, name: str) -> Lease:
        """A lease only one process sharing this ledger holds at a time (see ``lease``)."""
        return lease_for(self._engines.reader, name)

    async def close(self) -> None:
        await self._writer.stop()
        await self._engines.dispose()

    # ---- outcomes -------------------------------------------------------------

    async def record_outcome(self, cmd: RecordOutcome, now: datetime) -> OutcomeRecorded:
        cmd.validate(now)
        return await self._writer.submit(
            lambda s: self._record(s, cmd, now), customers=(cmd.customer_id,)
        )

    async def record_outcomes(
        self, cmds: Sequence[RecordOutcome], now: datetime
    ) -> list[OutcomeRecorded | Exception]:
        """Each item as ``record_outcome``; the valid ones go to the writer as one caller."""
        refused: dict[int, Exception] = {}
        for index, cmd in enumerate(cmds):
            try:
                cmd.validate(now, prefix=f"requests[{index}].")
            except DomainError as error:
                refused[index] = error
        valid = [cmd for index, cmd in enumerate(cmds) if index not in refused]
        recorded = iter(
            await self._writer.submit_many(
                [partial(self._record, cmd=c, now=now) for c in valid],
                customers={c.customer_id for c in valid},
            )
        )
        return [refused[i] if i in refused else next(recorded) for i in range(len(cmds))]

    def _record(self, s: WriteSession, cmd: RecordOutcome, now: datetime) -> OutcomeRecorded:
        head = s.customer(cmd.customer_id)
        fingerprint = cmd.fingerprint()
        existing = s.outcome(cmd.customer_id, cmd.outcome_id)
        if existing is not None:
            if existing["fingerprint"] != fingerprint:
                raise _reused("outcome_id", cmd.outcome_id)
            return _recorded_from_row(existing, replayed=True)
        at = cmd.occurred_at or now
        version = require_version(s.version_in_force(head.rate_card_id, at), head.rate_card_id, at)
        found = s.unexpired_buckets(head.customer_id, cmd.outcome_type, at)
        rating = rate_outcome(version, found, cmd.outcome_type, at)
        take = entries.OutcomeTake(
            cmd.outcome_id, cmd.outcome_type, rating.bucket_id, rating.charged
        )
        pending = cmd.state is OutcomeState.PENDING
        settles_at = at + rating.settlement_window if pending else None
        if pending:
            tx = entries.outcome_held(take, at)
        else:
            tx = entries.outcome_rated(take, max(at, now), was_pending=False)
        sequence = s.append(head, tx, to_micros(now))
        state = OutcomeState.PENDING if pending else OutcomeState.SETTLED
        s.add_outcome(
            {
                "customer_id": cmd.customer_id,
                "outcome_id": cmd.outcome_id,
                "fingerprint": fingerprint,
                "outcome_type": cmd.outcome_type,
                "state": state.value,
                "recorded_state": state.value,
                "occurred_at": to_micros(at),
                "recorded_at": to_micros(now),
                "settles_at": to_micros(settles_at) if settles_at else None,
                "bucket_id": rating.bucket_id,
                "unit_price_nanos": rating.unit_price.nanos,
                "charged_nanos": rating.charged.nanos,
                "currency": rating.unit_price.currency,
                "rate_card_version": to_micros(rating.rate_card_version),
                "attributes": _ATTRIBUTES.encode(dict(cmd.attributes)),
                "record_sequence": sequence,
                "settle_sequence": None if pending else sequence,
                "end_sequence": None,
                "end_fingerprint": None,
                "end_units_returned": None,
                "end_refunded_nanos": None,
            }
        )
        return OutcomeRecorded(
            ledger_sequence=sequence,
            unit_price=rating.unit_price,
            bucket_id=rating.bucket_id,
            charged=rating.charged,
            rate_card_version=rating.rate_card_version,
            state=state,
            settles_at=settles_at,
            replayed=False,
        )

    async def confirm_outcome(self, cmd: ConfirmOutcome, now: datetime) -> OutcomeConfirmed:
        cmd.validate()
        return await self._writer.submit(
            lambda s: self._confirm(s, cmd, now), customers=(cmd.customer_id,)
        )

    def _confirm(self, s: WriteSession, cmd: ConfirmOutcome, now: datetime) -> OutcomeConfirmed:
        head = s.customer(cmd.customer_id)
        outcome = self._require_outcome(s, cmd.customer_id, cmd.outcome_id)
        if outcome.state in (OutcomeState.RELEASED, OutcomeState.REVERSED):
            raise OutcomeReversed(
                f"outcome {cmd.outcome_id!r} was reversed and cannot be confirmed",
                outcome_id=cmd.outcome_id,
            )
        if outcome.state is OutcomeState.SETTLED:
            return OutcomeConfirmed(outcome.row["settle_sequence"], replayed=True)
        at = settlement_time(outcome.due, outcome.recorded, confirmed_at=now)
        sequence = self._settle(s, head, outcome, at, now)
        return OutcomeConfirmed(sequence, replayed=False)

    def _settle(
        self,
        s: WriteSession,
        head: CustomerHead,
        outcome: _Outcome,
        at: datetime,
        now: datetime,
    ) -> int:
        tx = entries.outcome_rated(outcome.take, at, was_pending=True)
        sequence = s.append(head, tx, to_micros(now))
        self._set_outcome(s, outcome, state=OutcomeState.SETTLED.value, settle_sequence=sequence)
        return sequence

    async def reverse_outcome(self, cmd: ReverseOutcome, now: datetime) -> OutcomeUndone:
        cmd.validate()
        return await self._writer.submit(
            lambda s: self._reverse(s, cmd, now), customers=(cmd.customer_id,)
        )

    def _reverse(self, s: WriteSession, cmd: ReverseOutcome, now: datetime) -> OutcomeUndone:
        head = s.customer(cmd.customer_id)
        outcome = self._require_outcome(s, cmd.customer_id, cmd.outcome_id)
        fingerprint = cmd.fingerprint()
        if outcome.state in (OutcomeState.RELEASED, OutcomeState.REVERSED):
            if outcome.row["end_fingerprint"] != fingerprint:
                raise _reused("outcome_id", cmd.outcome_id)
            return OutcomeUndone(
                ledger_sequence=outcome.row["end_sequence"],
                state=outcome.state,
                units_returned=outcome.row["end_units_returned"],
                refunded=Money(outcome.row["currency"], outcome.row["end_refunded_nanos"]),
                replayed=True,
            )
        if outcome.state is OutcomeState.PENDING and outcome.due <= now:
            # It settled by itself before this reversal; the sweep had not written it yet.
            self._settle(s, head, outcome, settlement_time(outcome.due, outcome.recorded), now)
            outcome = self._require_outcome(s, cmd.customer_id, cmd.outcome_id)
        take = outcome.take
        expired = self._bucket_has_expired(s.conn, head.customer_id, take.bucket_id)
        if outcome.state is OutcomeState.PENDING:
            tx = entries.outcome_released(take, now, bucket_expired=expired)
            state, refunded = OutcomeState.RELEASED, Money.zero(take.charge.currency)
        else:
            tx = entries.outcome_reversed(take, now, bucket_expired=expired)
            state, refunded = OutcomeState.REVERSED, take.charge
        sequence = s.append(head, tx, to_micros(now))
        units_returned = 1 if take.bucket_id else 0
        self._set_outcome(
            s,
            outcome,
            state=state.value,
            end_sequence=sequence,
            end_fingerprint=fingerprint,
            end_units_returned=units_returned,
            end_refunded_nanos=refunded.nanos,
        )
        return OutcomeUndone(sequence, state, units_returned, refunded, replayed=False)

    def _bucket_has_expired(
        self, conn: Connection, customer_id: str, bucket_id: str | None
    ) -> bool:
        """True once the expiry sweep has closed the bucket: returned units expire too."""
        if not bucket_id:
            return False
        sequence = (
            conn.execute(
                select(buckets.c.expired_sequence).where(
                    buckets.c.customer_id == customer_id, buckets.c.bucket_id == bucket_id
                )
            )
        ).scalar()
        return sequence is not None

    def _require_outcome(self, s: WriteSession, customer_id: str, outcome_id: str) -> _Outcome:
        row = s.outcome(customer_id, outcome_id)
        if row is None:
            raise OutcomeNotFound(
                f"outcome {outcome_id!r} was never recorded for customer {customer_id!r}",
                outcome_id=outcome_id,
            )
        return _Outcome(row)

    def _set_outcome(self, s: WriteSession, outcome: _Outcome, **values: object) -> None:
        s.conn.execute(
            update(outcomes)
            .where(
                outcomes.c.customer_id == outcome.row["customer_id"],
                outcomes.c.outcome_id == outcome.row["outcome_id"],
            )
            .values(**values)
        )

    # ---- time-driven transitions ------------------------------------------------

    async def settle_due(self, now: datetime, limit: int = 500) -> int:
        """Settle pending outcomes whose window has passed, at the end of their window."""
        return await self._writer.submit(lambda s: self._settle_due(s, now, limit))

    def _settle_due(self, s: WriteSession, now: datetime, limit: int) -> int:
        rows = (
            s.conn.execute(
                select(outcomes)
                .where(outcomes.c.state == "PENDING", outcomes.c.settles_at <= to_micros(now))
                .order_by(outcomes.c.settles_at)
                .limit(limit)
            )
        ).all()
        s.lock_customers(row.customer_id for row in rows)
        settled = 0
        for row in rows:
            head = s.customer(row.customer_id)
            # Read again under the customer's lock: another replica's sweep may have
            # settled it since the query above (settling twice would charge twice).
            current = s.outcome(row.customer_id, row.outcome_id)
            if current is None or current["state"] != OutcomeState.PENDING.value:
                continue
            outcome = _Outcome(current)
            self._settle(s, head, outcome, settlement_time(outcome.due, outcome.recorded), now)
            settled += 1
        return settled

    async def expire_buckets(self, now: datetime, limit: int = 500) -> int:
        """Move the undrawn units of buckets past ``valid_until`` to ``expired``."""
        return await self._writer.submit(lambda s: self._expire_buckets(s, now, limit))

    def _expire_buckets(self, s: WriteSession, now: datetime, limit: int) -> int:
        rows = (
            s.conn.execute(
                select(buckets.c.customer_id, buckets.c.bucket_id)
                .where(
                    buckets.c.expired_sequence.is_(None),
                    buckets.c.valid_until <= to_micros(now),
                )
                .order_by(buckets.c.valid_until)
                .limit(limit)
            )
        ).all()
        s.lock_customers(row.customer_id for row in rows)
        for row in rows:
            head = s.customer(row.customer_id)
            # Read again under the customer's lock: another replica's sweep may have
            # expired it since the query above.
            conn = s.conn
            if _expired_sequence(conn, row.customer_id, row.bucket_id) is not None:
                continue
            bucket = load_bucket(Executor(conn), row.customer_id, row.bucket_id)
            assert bucket is not None
            sequence = 0  # nothing left to expire
            if bucket.remaining > 0:
                tx = entries.bucket_expired(
                    bucket.bucket_id, bucket.outcome_type, bucket.remaining, bucket.valid_until
                )
                sequence = s.append(head, tx, to_micros(now))
            s.conn.execute(
                update(buckets)
                .where(
                    buckets.c.customer_id == row.customer_id,
                    buckets.c.bucket_id == row.bucket_id,
                )
                .values(expired_sequence=sequence)
            )
        return len(rows)

    # ---- buckets ----------------------------------------------------------------

    async def consume_bucket(self, cmd: ConsumeBucket, now: datetime) -> Consumed:
        cmd.validate()
        return await self._writer.submit(
            lambda s: self._consume(s, cmd, now), customers=(cmd.customer_id,)
        )

    def _consume(self, s: WriteSession, cmd: ConsumeBucket, now: datetime) -> Consumed:
        head = s.customer(cmd.customer_id)
        fingerprint = cmd.fingerprint()
        conn = s.conn
        prior = (
            conn.execute(
                select(consumptions).where(
                    consumptions.c.customer_id == cmd.customer_id,
                    consumptions.c.request_id == cmd.request_id,
                )
            )
        ).first()
        if prior is not None:
            if prior.fingerprint != fingerprint:
                raise _reused("request_id", cmd.request_id)
            return _consumed_from_json(prior.result, prior.sequence)
        sql = Executor(conn)
        if cmd.bucket_id:
            one = load_bucket(sql, cmd.customer_id, cmd.bucket_id)
            candidates = [one] if one else []
        else:
            candidates = load_drawable_buckets(sql, cmd.customer_id, cmd.outcome_type, now)
        draws = plan_consumption(
            candidates,
            quantity=cmd.quantity,
            at=now,
            outcome_type=cmd.outcome_type,
            bucket_id=cmd.bucket_id,
        )
        outcome_type = cmd.outcome_type or candidates[0].outcome_type
        tx = entries.bucket_consumed(cmd.request_id, outcome_type, draws, now)
        sequence = s.append(head, tx, to_micros(now))
        conn = s.conn
        after = load_drawable_buckets(Executor(conn), cmd.customer_id, outcome_type, now)
        result = Consumed(
            consumed=cmd.quantity,
            lines=tuple(draws),
            remaining_total=sum(b.remaining for b in after),
            ledger_sequence=sequence,
            replayed=False,
        )
        conn.execute(
            consumptions.insert().values(
                customer_id=cmd.customer_id,
                request_id=cmd.request_id,
                fingerprint=fingerprint,
                sequence=sequence,
                result=_consumed_to_json(result),
            )
        )
        return result

    async def create_bucket(self, cmd: CreateBucket, now: datetime) -> BucketCreated:
        cmd.validate()
        return await self._writer.submit(
            lambda s: self._create_bucket(s, cmd, now), customers=(cmd.customer_id,)
        )

    def _create_bucket(self, s: WriteSession, cmd: CreateBucket, now: datetime) -> BucketCreated:
        head = s.customer(cmd.customer_id)
        fingerprint = cmd.fingerprint()
        conn = s.conn
        sql = Executor(conn)
        prior = (
            conn.execute(
                select(buckets.c.fingerprint, buckets.c.created_sequence).where(
                    buckets.c.customer_id == cmd.customer_id, buckets.c.bucket_id == cmd.bucket_id
                )
            )
        ).first()
        if prior is not None:
            if prior.fingerprint != fingerprint:
                raise _reused("bucket_id", cmd.bucket_id)
            bucket = load_bucket(sql, cmd.customer_id, cmd.bucket_id)
            assert bucket is not None
            return BucketCreated(bucket, prior.created_sequence, replayed=True)
        valid_from = cmd.valid_from or now
        valid_until = cmd.valid_until or valid_from + DEFAULT_BUCKET_VALIDITY
        if valid_until <= valid_from:
            raise InvalidArgument.field("valid_until", "must be after valid_from")
        unit_price = cmd.unit_price
        if unit_price is None:
            version = require_version(
                load_version_in_force(sql, head.rate_card_id, valid_from),
                head.rate_card_id,
                valid_from,
            )
            unit_price = version.price_for(cmd.outcome_type).unit_price
        quantity = cmd.quantity if cmd.quantity is not None else _funded_units(cmd, unit_price)
        tx = entries.bucket_created(cmd.bucket_id, cmd.outcome_type, quantity, valid_from)
        sequence = s.append(head, tx, to_micros(now))
        conn = s.conn
        conn.execute(
            buckets.insert().values(
                customer_id=cmd.customer_id,
                bucket_id=cmd.bucket_id,
                outcome_type=cmd.outcome_type,
                quantity=quantity,
                unit_price_nanos=unit_price.nanos,
                currency=unit_price.currency,
                valid_from=to_micros(valid_from),
                valid_until=to_micros(valid_until),
                source=cmd.source.value,
                priority=cmd.priority,
                created_sequence=sequence,
                fingerprint=fingerprint,
            )
        )
        bucket = load_bucket(Executor(conn), cmd.customer_id, cmd.bucket_id)
        assert bucket is not None
        return BucketCreated(bucket, sequence, replayed=False)

    # ---- customers and rate cards --------------------------------------------------

    async def put_customer(self, cmd: PutCustomer, now: datetime) -> CustomerPut:
        cmd.validate()
        return await self._writer.submit(
            lambda s: self._put_customer(s, cmd, now), customers=(cmd.customer_id,)
        )

    def _put_customer(self, s: WriteSession, cmd: PutCustomer, now: datetime) -> CustomerPut:
        micros = to_micros(now)
        conn = s.conn
        try:
            head = load_customer(Executor(conn), cmd.customer_id, for_update=True)
        except DomainError:
            conn.execute(
                customers.insert().values(
                    customer_id=cmd.customer_id,
                    stripe_customer_id=cmd.stripe_customer_id,
                    rate_card_id=cmd.rate_card_id,
                    head_sequence=0,
                    head_hash="",
                    created_at=micros,
                    updated_at=micros,
                )
            )
            return CustomerPut(
                Customer(cmd.customer_id, cmd.stripe_customer_id, cmd.rate_card_id, now, now),
                replayed=False,
            )
        created = from_micros(head.created_at)
        if (head.stripe_customer_id, head.rate_card_id) == (
            cmd.stripe_customer_id,
            cmd.rate_card_id,
        ):
            customer = Customer(
                cmd.customer_id,
                head.stripe_customer_id,
                head.rate_card_id,
                created,
                from_micros(head.updated_at),
            )
            return CustomerPut(customer, replayed=True)
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == cmd.customer_id)
            .values(
                stripe_customer_id=cmd.stripe_customer_id,
                rate_card_id=cmd.rate_card_id,
                updated_at=micros,
            )
        )
        customer = Customer(cmd.customer_id, cmd.stripe_customer_id, cmd.rate_card_id, created, now)
        return CustomerPut(customer, replayed=False)

    async def put_rate_card(self, cmd: PutRateCard, now: datetime) -> RateCardPut:
        cmd.validate()
        return await self._writer.submit(lambda s: self._put_rate_card(s.conn, cmd, now))

    def _put_rate_card(self, conn: Connection, cmd: PutRateCard, now: datetime) -> RateCardPut:
        prices = {p.outcome_type: p for p in cmd.prices}
        effective_from = cmd.effective_from
        if effective_from is None:
            in_force = load_version_in_force(Executor(conn), cmd.rate_card_id, now)
            effective_from = now if in_force else datetime(1970, 1, 1, tzinfo=UTC)
            candidate = RateCardVersion(cmd.rate_card_id, effective_from, cmd.currency, prices)
            if in_force is not None and in_force.same_prices(candidate):
                return RateCardPut(in_force, replayed=True)
        version = RateCardVersion(cmd.rate_card_id, effective_from, cmd.currency, prices)
        row = (
            conn.execute(
                select(rate_card_versions).where(
                    rate_card_versions.c.rate_card_id == cmd.rate_card_id,
                    rate_card_versions.c.effective_from == to_micros(effective_from),
                )
            )
        ).first()
        if row is not None:
            stored = version_from_row(row._mapping)
            if not stored.same_prices(version):
                raise _reused(
                    "(rate_card_id, effective_from)",
                    f"{cmd.rate_card_id}@{effective_from.isoformat()}",
                )
            return RateCardPut(stored, replayed=True)
        conn.execute(
            rate_card_versions.insert().values(
                rate_card_id=cmd.rate_card_id,
                effective_from=to_micros(effective_from),
                currency=cmd.currency,
                prices=encode_prices(version),
                recorded_at=to_micros(now),
            )
        )
        return RateCardPut(version, replayed=False)

    # ---- reads --------------------------------------------------------------------

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in the next group commit (the reporter's bookkeeping goes this way)."""
        return await self._writer.submit(lambda s: job(s.conn))

    async def read(self, job: Callable[[Connection], T]) -> T:
        """Run a read on its own snapshot, never waiting for the writer."""
        return await self._engines.reads.run(partial(_in_snapshot, job))

    async def quote_cost(
        self, customer_id: str, outcome_type: str, quantity: int, at: datetime
    ) -> Quote:
        def job(conn: Connection) -> Quote:
            sql = Executor(conn)
            head = load_customer(sql, customer_id)
            version = require_version(
                load_version_in_force(sql, head.rate_card_id, at), head.rate_card_id, at
            )
            found = load_drawable_buckets(sql, customer_id, outcome_type, at)
            return quote(version, found, outcome_type, quantity, at)

        return await self.read(job)

    async def get_balance(self, customer_id: str, now: datetime) -> Balance:
        return await self.read(lambda conn: _balance(conn, customer_id, now))

    async def list_entries(self, customer_id: str, *, after: int, limit: int) -> list[Entry]:
        def job(conn: Connection) -> list[Entry]:
            load_customer(Executor(conn), customer_id)
            return load_entries(conn, customer_id, after=after, limit=limit)

        return await self.read(job)


def _in_snapshot(job: Callable[[Connection], T], conn: Connection) -> T:
    """One transaction, so every statement of ``job`` sees the same database."""
    with conn.begin():
        return job(conn)


def _balance(conn: Connection, customer_id: str, now: datetime) -> Balance:
    sql = Executor(conn)
    head = load_customer(sql, customer_id)
    period = entries.period_of(now)
    amounts = load_balances(
        sql,
        customer_id,
        [
            entries.usage_outcomes(period),
            entries.usage_charged(period),
            entries.OUTCOMES_PENDING,
            entries.CHARGES_PENDING,
        ],
    )
    all_buckets = sorted(load_all_buckets(sql, customer_id), key=burn_down_key)
    version = load_version_in_force(sql, head.rate_card_id, now) or load_first_version(
        sql, head.rate_card_id
    )
    currency = version.currency if version else _first_currency(amounts) or "USD"

    def total(account: str, *, money: bool) -> int:
        return sum(
            v
            for (a, asset), v in amounts.items()
            if a == account and (asset == currency if money else asset.startswith("unit:"))
        )

    return Balance(
        buckets=tuple(all_buckets),
        period_start=datetime(now.year, now.month, 1, tzinfo=UTC),
        period_outcomes=total(entries.usage_outcomes(period), money=False),
        period_charged=Money(currency, total(entries.usage_charged(period), money=True)),
        pending_outcomes=total(entries.OUTCOMES_PENDING, money=False),
        pending_charge=Money(currency, total(entries.CHARGES_PENDING, money=True)),
        ledger_sequence=head.head_sequence,
    )


def _first_currency(amounts: dict[tuple[str, str], int]) -> str | None:
    return next((asset for (_, asset) in amounts if not asset.startswith("unit:")), None)


def _funded_units(cmd: CreateBucket, unit_price: Money) -> int:
    assert cmd.funding is not None
    if cmd.funding.currency != unit_price.currency:
        raise InvalidArgument.field(
            "funding.currency_code",
            f"must be the unit price's currency {unit_price.currency}, got {cmd.funding.currency}",
        )
    if unit_price.nanos <= 0:
        raise InvalidArgument.field("unit_price", "must be positive to turn funding into units")
    units = cmd.funding.units_affordable(unit_price)
    if units > MAX_QUANTITY:
        raise InvalidArgument.field(
            "funding", f"buys {units} units at {unit_price} per unit; at most {MAX_QUANTITY}"
        )
    if units < 1:
        raise InvalidArgument.field(
            "funding", f"{cmd.funding} buys no whole unit at {unit_price} per unit"
        )
    return units


def _recorded_from_row(row: RowLike, *, replayed: bool) -> OutcomeRecorded:
    settles_at = row["settles_at"]
    return OutcomeRecorded(
        ledger_sequence=row["record_sequence"],
        unit_price=Money(row["currency"], row["unit_price_nanos"]),
        bucket_id=row["bucket_id"],
        charged=Money(row["currency"], row["charged_nanos"]),
        rate_card_version=from_micros(row["rate_card_version"]),
        state=OutcomeState(row["recorded_state"]),
        settles_at=from_micros(settles_at) if settles_at is not None else None,
        replayed=replayed,
    )


def _consumed_to_json(result: Consumed) -> str:
    return json.dumps(
        {
            "consumed": result.consumed,
            "lines": [[d.bucket_id, d.units, d.remaining] for d in result.lines],
            "remaining_total": result.remaining_total,
        }
    )


def _consumed_from_json(text: str, sequence: int) -> Consumed:
    data = json.loads(text)
    return Consumed(
        consumed=data["consumed"],
        lines=tuple(Draw(b, u, r) for b, u, r in data["lines"]),
        remaining_total=data["remaining_total"],
        ledger_sequence=sequence,
        replayed=True,
    )
