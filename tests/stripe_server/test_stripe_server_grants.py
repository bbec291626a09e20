"""Billing credit grants: create, list, retrieve, update, void, expire; the balance summary."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import CUSTOMER, credit_grant

from rating_service.testing.stripe_server import ManualClock, StripeTestServer

DAY = 86_400
pytestmark = pytest.mark.usefixtures("customer")


async def test_a_grant_keeps_every_field_it_was_created_with(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """Amount, scope, category, times, name, metadata and priority come back as sent."""
    now = int(stripe_clock())
    params = credit_grant(
        value=9900,
        category="promotional",
        effective_at=now,
        expires_at=now + 30 * DAY,
        name="Bucket b-1",
        metadata={"bucket": "b-1"},
        priority=10,
    )

    grant = await client.v1.billing.credit_grants.create_async(params)

    assert grant.id.startswith("credgr_")
    assert grant.customer == CUSTOMER
    assert grant.amount.monetary is not None
    assert (grant.amount.type, grant.amount.monetary.currency, grant.amount.monetary.value) == (
        "monetary",
        "usd",
        9900,
    )
    assert grant.applicability_config.scope.price_type == "metered"
    assert (grant.category, grant.name, grant.priority) == ("promotional", "Bucket b-1", 10)
    assert (grant.effective_at, grant.expires_at, grant.voided_at) == (now, now + 30 * DAY, None)
    assert grant.metadata.to_dict() == {"bucket": "b-1"}


async def test_a_grant_has_stripes_defaults(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """Category ``paid``, priority 50, effective now, never expiring."""
    grant = await client.v1.billing.credit_grants.create_async(credit_grant())

    assert (grant.category, grant.priority) == ("paid", 50)
    assert (grant.effective_at, grant.expires_at) == (int(stripe_clock()), None)


async def test_a_grant_for_an_unknown_customer_is_refused(client: stripe.StripeClient) -> None:
    """400 ``resource_missing`` with ``param=customer``."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.credit_grants.create_async(credit_grant(customer="cus_nobody"))

    assert (raised.value.http_status, raised.value.code, raised.value.param) == (
        400,
        "resource_missing",
        "customer",
    )


async def test_a_grant_without_a_customer_is_refused(client: stripe.StripeClient) -> None:
    """The spec makes ``customer`` optional (``customer_account`` is the other way); we need it."""
    params = credit_grant()
    del params["customer"]

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.credit_grants.create_async(params)

    assert (raised.value.code, raised.value.param) == ("parameter_missing", "customer")


async def test_a_scope_with_both_a_price_type_and_prices_is_refused(
    client: stripe.StripeClient,
) -> None:
    """A scope is ``price_type`` or ``prices``, never both."""
    params = credit_grant()
    params["applicability_config"]["scope"]["prices"] = [{"id": "price_a"}]

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.credit_grants.create_async(params)

    assert raised.value.param == "applicability_config[scope]"


@pytest.mark.parametrize("value", [0, -100])
async def test_a_grant_amount_must_be_positive(client: stripe.StripeClient, value: int) -> None:
    """``amount[monetary][value]`` is a positive number of minor units."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.credit_grants.create_async(credit_grant(value=value))

    assert raised.value.param == "amount[monetary][value]"


async def test_grants_are_listed_by_customer_newest_first(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``GET /v1/billing/credit_grants?customer=...`` lists that customer's grants only."""
    stripe_server.add_customer("cus_b")
    first = await client.v1.billing.credit_grants.create_async(credit_grant(value=100))
    await client.v1.billing.credit_grants.create_async(credit_grant("cus_b", value=200))
    second = await client.v1.billing.credit_grants.create_async(credit_grant(value=300))

    listed = await client.v1.billing.credit_grants.list_async({"customer": CUSTOMER})

    assert [g.id for g in listed.data] == [second.id, first.id]


async def test_an_unknown_grant_is_a_404(client: stripe.StripeClient) -> None:
    """Retrieving a grant that does not exist: 404 ``resource_missing``."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.credit_grants.retrieve_async("credgr_nope")

    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


async def test_an_update_changes_expiry_and_merges_metadata(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """``expires_at`` is replaced; metadata keys merge and an empty value deletes its key."""
    grant = await client.v1.billing.credit_grants.create_async(
        credit_grant(metadata={"bucket": "b-1", "batch": "7"})
    )
    expires_at = int(stripe_clock()) + DAY

    updated = await client.v1.billing.credit_grants.update_async(
        grant.id, {"expires_at": expires_at, "metadata": {"batch": "", "note": "renewed"}}
    )

    assert updated.expires_at == expires_at
    assert updated.metadata.to_dict() == {"bucket": "b-1", "note": "renewed"}


async def test_an_update_of_any_other_field_is_refused(client: stripe.StripeClient) -> None:
    """Only ``expires_at`` and ``metadata`` can change: ``name`` is an unknown parameter here."""
    grant = await client.v1.billing.credit_grants.create_async(credit_grant())

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.billing.credit_grants.update_async(grant.id, {"name": "renamed"})

    assert (raised.value.code, raised.value.param) == ("parameter_unknown", "name")


async def test_a_voided_grant_records_when_and_cannot_be_voided_again(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """``void`` sets ``voided_at``; a second ``void`` is a 400."""
    grant = await client.v1.billing.credit_grants.create_async(credit_grant())
    voided = await client.v1.billing.credit_grants.void_grant_async(grant.id)

    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing.credit_grants.void_grant_async(grant.id)

    assert voided.voided_at == int(stripe_clock())


async def test_an_expired_grant_expires_now(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """``expire`` sets ``expires_at`` to the server's now."""
    grant = await client.v1.billing.credit_grants.create_async(credit_grant())

    expired = await client.v1.billing.credit_grants.expire_async(grant.id)

    assert expired.expires_at == int(stripe_clock())


async def test_the_balance_summary_adds_up_the_live_grants(
    client: stripe.StripeClient, stripe_clock: ManualClock
) -> None:
    """Voided, expired and not-yet-effective grants are left out of the available balance."""
    now = int(stripe_clock())
    await client.v1.billing.credit_grants.create_async(credit_grant(value=1000))
    voided = await client.v1.billing.credit_grants.create_async(credit_grant(value=200))
    await client.v1.billing.credit_grants.void_grant_async(voided.id)
    await client.v1.billing.credit_grants.create_async(
        credit_grant(value=30, effective_at=now + DAY)
    )

    summary = await client.v1.billing.credit_balance_summary.retrieve_async(
        {
            "customer": CUSTOMER,
            "filter": {
                "type": "applicability_scope",
                "applicability_scope": {"price_type": "metered"},
            },
        }
    )

    assert [
        b.available_balance.monetary and b.available_balance.monetary.value
        for b in summary.balances
    ] == [1000]


async def test_grants_can_be_read_without_http(
    stripe_server: StripeTestServer, client: stripe.StripeClient
) -> None:
    """``state.grants_for(customer)`` gives the grants as the API shows them."""
    grant = await client.v1.billing.credit_grants.create_async(credit_grant(value=4200))

    grants = stripe_server.state.grants_for(CUSTOMER)

    assert [(g["id"], g["amount"]["monetary"]["value"]) for g in grants] == [(grant.id, 4200)]
