"""The reporter's credit grants: each bucket's, older versions voided, and owed-back credits.

Every grant is created under an idempotency key derived from what it pays
for (the bucket and its grant version, or the closed month and its credit
number), and its id saved afterwards, so a crash in between never makes two.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol, TypeVar

from rating_service.domain.buckets import BucketSource
from rating_service.domain.grants import grant_idempotency_key
from rating_service.domain.usage import owed_credit_key
from rating_service.ledger import outbox
from rating_service.ledger.engine import Connection
from rating_service.reporter.currency import minor_units
from rating_service.reporter.gateway import CreditGrantSpec, PermanentStripeError
from rating_service.reporter.pass_context import PAGE, PassContext, PassResult

C = TypeVar("C", bound="_ToCredit")


class _ToCredit(Protocol):
    """A grant to create: what ``grants_to_create`` and ``owed_credits_to_create`` list."""

    @property
    def customer_id(self) -> str: ...
    @property
    def stripe_customer_id(self) -> str: ...
    @property
    def verified(self) -> bool: ...


async def _create_each(
    ctx: PassContext,
    result: PassResult,
    pending: Callable[[Connection], Sequence[C]],
    create: Callable[[PassContext, C], Awaitable[str]],
    record: Callable[[C, str], Callable[[Connection], None]],
) -> None:
    """Create each pending grant in Stripe, then record its id; a refusal parks its customer."""
    while items := await ctx.store.read(pending):
        for item in items:
            if not item.verified and not await ctx.verified(
                item.customer_id, item.stripe_customer_id, result
            ):
                continue
            try:
                grant_id = await create(ctx, item)
            except PermanentStripeError as error:
                await ctx.park(item.customer_id, error, result)
                continue
            await ctx.store.write(record(item, grant_id))
            result.grants_created += 1


async def create_grants(ctx: PassContext, result: PassResult) -> None:
    """Each bucket's grant of its planned version (domain/grants.py)."""
    await _create_each(
        ctx,
        result,
        lambda c: outbox.grants_to_create(c, PAGE),
        _create_grant,
        lambda grant, grant_id: partial(
            outbox.record_grant,
            customer_id=grant.customer_id,
            bucket_id=grant.bucket_id,
            grant_id=grant_id,
            version=grant.version,
        ),
    )


async def _create_grant(ctx: PassContext, grant: outbox.GrantToCreate) -> str:
    """The grant of the bucket's planned version (domain/grants.py), worth its units."""
    amount = minor_units(grant.unit_price_nanos * grant.units, grant.currency)
    if amount <= 0:
        return ""  # nothing to credit (a free outcome type, or nothing left)
    return await ctx.gateway.create_credit_grant(
        CreditGrantSpec(
            idempotency_key=grant_idempotency_key(
                grant.customer_id, grant.bucket_id, grant.version
            ),
            stripe_customer_id=grant.stripe_customer_id,
            amount_minor=amount,
            currency=grant.currency.lower(),
            category="promotional" if grant.source is BucketSource.PROMOTIONAL else "paid",
            effective_at=grant.valid_from,
            expires_at=grant.valid_until,
            name=f"{grant.units} x {grant.outcome_type} ({grant.bucket_id})"[:100],
            metadata={
                "rating_customer_id": grant.customer_id,
                "bucket_id": grant.bucket_id,
                "grant_version": str(grant.version),
            },
            price_ids=tuple(ctx.settings.prices.get(grant.outcome_type, ())),
        )
    )


async def void_stale_grants(ctx: PassContext, result: PassResult) -> None:
    """Void every grant of a bucket but its current version's, once that one exists.

    Stripe is asked for the customer's grants rather than trusting stored ids, so
    a grant created before a crash kept its id from the ledger is voided too.
    """
    while stale := await ctx.store.read(lambda c: outbox.stale_grants(c, PAGE)):
        for bucket in stale:
            try:
                for grant in await ctx.gateway.credit_grants(bucket.stripe_customer_id):
                    if (
                        not grant.voided
                        and grant.grant_id != bucket.grant_id
                        and grant.metadata.get("bucket_id") == bucket.bucket_id
                        and grant.metadata.get("rating_customer_id") == bucket.customer_id
                    ):
                        await ctx.gateway.void_credit_grant(grant.grant_id)
                        result.grants_voided += 1
            except PermanentStripeError as error:
                await ctx.park(bucket.customer_id, error, result)
                continue
            await ctx.store.write(
                partial(
                    outbox.record_stale_voided,
                    customer_id=bucket.customer_id,
                    bucket_id=bucket.bucket_id,
                    version=bucket.version,
                )
            )


async def create_owed_credits(ctx: PassContext, result: PassResult) -> None:
    """Credit grants for what closed months owe back (domain/usage.py, policy step 4)."""
    await _create_each(
        ctx,
        result,
        lambda c: outbox.owed_credits_to_create(c, PAGE),
        _create_owed_credit,
        lambda credit, grant_id: partial(
            outbox.record_owed_credit,
            customer_id=credit.customer_id,
            event_name=credit.event_name,
            period=credit.period,
            number=credit.number,
            grant_id=grant_id,
        ),
    )


async def _create_owed_credit(ctx: PassContext, credit: outbox.OwedCredit) -> str:
    amount = minor_units(credit.unit_price_nanos * credit.units, credit.currency)
    if amount <= 0:
        return ""  # nothing to give back (a free outcome type)
    key = owed_credit_key(credit.customer_id, credit.event_name, credit.period, credit.number)
    outcome_types = [
        t for t in ctx.settings.prices if ctx.settings.event_name(t) == credit.event_name
    ]
    return await ctx.gateway.create_credit_grant(
        CreditGrantSpec(
            idempotency_key=key,
            stripe_customer_id=credit.stripe_customer_id,
            amount_minor=amount,
            currency=credit.currency.lower(),
            # Not prepaid: usage billed and then reversed, given back as a discount.
            category="promotional",
            effective_at=ctx.clock(),
            expires_at=None,
            name=(f"{credit.units} x {credit.event_name} reversed after billing, {credit.period}")[
                :100
            ],
            metadata={
                "rating_customer_id": credit.customer_id,
                "owed_back": key,
                "period": credit.period,
                "event_name": credit.event_name,
                "units": str(credit.units),
            },
            price_ids=tuple(p for t in sorted(outcome_types) for p in ctx.settings.prices[t])[:20],
        )
    )
