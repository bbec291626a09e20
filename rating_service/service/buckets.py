"""Buckets: create them, draw from them by hand, void them, and expire what is left at their end."""

from __future__ import annotations

from datetime import datetime

from rating_service.domain import postings as entries
from rating_service.domain.bucket_terms import funded_units, require_card_currency, validity
from rating_service.domain.buckets import Bucket, plan_consumption
from rating_service.domain.commands import ConsumeBucket, CreateBucket, VoidBucket
from rating_service.domain.errors import BucketNotActive, BucketNotFound
from rating_service.domain.ratecard import require_version
from rating_service.domain.results import BucketCreated, BucketVoided, Consumed
from rating_service.ledger.repositories.buckets import StoredVoid
from rating_service.ledger.session import WriteSession
from rating_service.service.idempotency import require_same_payload


def consume(uow: WriteSession, cmd: ConsumeBucket, now: datetime) -> Consumed:
    head = uow.customers.head(cmd.customer_id)
    fingerprint = cmd.fingerprint()
    prior = uow.consumptions.get(cmd.customer_id, cmd.request_id)
    if prior is not None:
        require_same_payload(prior[0], fingerprint, "request_id", cmd.request_id)
        return prior[1]
    if cmd.bucket_id:
        one = uow.buckets.get(cmd.customer_id, cmd.bucket_id)
        candidates = [one] if one else []
    else:
        candidates = uow.buckets.drawable(cmd.customer_id, cmd.outcome_type, now)
    draws = plan_consumption(
        candidates,
        quantity=cmd.quantity,
        at=now,
        outcome_type=cmd.outcome_type,
        bucket_id=cmd.bucket_id,
    )
    outcome_type = cmd.outcome_type or candidates[0].outcome_type
    tx = entries.bucket_consumed(cmd.request_id, outcome_type, draws, now)
    sequence = uow.append(head, tx, now)
    after = uow.buckets.drawable(cmd.customer_id, outcome_type, now)
    result = Consumed(
        consumed=cmd.quantity,
        lines=tuple(draws),
        remaining_total=sum(b.remaining for b in after),
        ledger_sequence=sequence,
        replayed=False,
    )
    uow.consumptions.add(cmd.customer_id, cmd.request_id, fingerprint, result)
    return result


def create(uow: WriteSession, cmd: CreateBucket, now: datetime) -> BucketCreated:
    head = uow.customers.head(cmd.customer_id)
    fingerprint = cmd.fingerprint()
    prior = uow.buckets.created(cmd.customer_id, cmd.bucket_id)
    if prior is not None:
        require_same_payload(prior[0], fingerprint, "bucket_id", cmd.bucket_id)
        return BucketCreated(_stored(uow, cmd.customer_id, cmd.bucket_id), prior[1], replayed=True)
    valid_from, valid_until = validity(cmd.valid_from, cmd.valid_until, now)
    in_force = uow.rate_cards.in_force(head.rate_card_id, valid_from)
    unit_price = cmd.unit_price
    if unit_price is None:
        version = require_version(in_force, head.rate_card_id, valid_from)
        unit_price = version.price_for(cmd.outcome_type).unit_price
    else:
        card = in_force or uow.rate_cards.first(head.rate_card_id)
        require_card_currency(unit_price, card.currency if card else None)
    if cmd.quantity is not None:
        quantity = cmd.quantity
    else:
        assert cmd.funding is not None, "CreateBucket.validate requires quantity or funding"
        quantity = funded_units(cmd.funding, unit_price)
    tx = entries.bucket_created(cmd.bucket_id, cmd.outcome_type, quantity, valid_from)
    sequence = uow.append(head, tx, now)
    terms = Bucket(
        bucket_id=cmd.bucket_id,
        outcome_type=cmd.outcome_type,
        quantity=quantity,
        remaining=quantity,
        held=0,
        valid_from=valid_from,
        valid_until=valid_until,
        unit_price=unit_price,
        source=cmd.source,
        priority=cmd.priority,
        created_sequence=sequence,
    )
    uow.buckets.add(cmd.customer_id, terms, created_sequence=sequence, fingerprint=fingerprint)
    return BucketCreated(_stored(uow, cmd.customer_id, cmd.bucket_id), sequence, replayed=False)


def void(uow: WriteSession, cmd: VoidBucket, now: datetime) -> BucketVoided:
    """End the bucket now: its undrawn units expire; held units stay with their outcomes.

    A pending outcome holding one of its units keeps it when it settles; when it
    is released (or a covered outcome is reversed), the unit comes back to a
    closed bucket and expires at once, as for a bucket past ``valid_until``.
    """
    head = uow.customers.head(cmd.customer_id)
    bucket = uow.buckets.get(cmd.customer_id, cmd.bucket_id)
    if bucket is None:
        raise BucketNotFound(f"bucket {cmd.bucket_id!r} does not exist", bucket_id=cmd.bucket_id)
    fingerprint = cmd.fingerprint()
    prior = uow.buckets.void(cmd.customer_id, cmd.bucket_id)
    if prior is not None:
        require_same_payload(prior.fingerprint, fingerprint, "bucket_id", cmd.bucket_id)
        return BucketVoided(bucket, prior.units, prior.sequence, prior.at, replayed=True)
    if now >= bucket.valid_until or uow.buckets.has_expired(cmd.customer_id, cmd.bucket_id):
        raise BucketNotActive(
            f"bucket {cmd.bucket_id!r} already ended at {bucket.valid_until.isoformat()}; "
            "there is nothing left to void",
            bucket_id=cmd.bucket_id,
        )
    tx = entries.bucket_voided(bucket.bucket_id, bucket.outcome_type, bucket.remaining, now)
    sequence = uow.append(head, tx, now)
    done = StoredVoid(fingerprint, sequence, bucket.remaining, now)
    uow.buckets.mark_voided(cmd.customer_id, cmd.bucket_id, done)
    voided = _stored(uow, cmd.customer_id, cmd.bucket_id)
    return BucketVoided(voided, done.units, sequence, now, replayed=False)


def expire_due(uow: WriteSession, now: datetime, limit: int) -> int:
    """Move the undrawn units of buckets past ``valid_until`` to ``expired``."""
    due = uow.buckets.expiring(now, limit)
    uow.lock_customers(customer_id for customer_id, _ in due)
    for customer_id, bucket_id in due:
        head = uow.customers.head(customer_id)
        # Read again under the customer's lock: another replica's sweep may have
        # expired it since the query above.
        if uow.buckets.has_expired(customer_id, bucket_id):
            continue
        bucket = _stored(uow, customer_id, bucket_id)
        sequence = 0  # nothing left to expire
        if bucket.remaining > 0:
            tx = entries.bucket_expired(
                bucket.bucket_id, bucket.outcome_type, bucket.remaining, bucket.valid_until
            )
            sequence = uow.append(head, tx, now)
        uow.buckets.mark_expired(customer_id, bucket_id, sequence)
    return len(due)


def _stored(uow: WriteSession, customer_id: str, bucket_id: str) -> Bucket:
    bucket = uow.buckets.get(customer_id, bucket_id)
    assert bucket is not None, "the bucket's row is read in the transaction that knows it exists"
    return bucket
