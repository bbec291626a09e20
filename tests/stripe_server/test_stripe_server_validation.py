"""Routing, authentication and parameter validation against the spec subset."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest
import stripe
from stripe_support import credit_grant, meter_event

from rating_service.testing.stripe_server import StripeTestServer

BOUND = aiohttp.ClientTimeout(total=10)
"""Raw HTTP calls give up after 10 s, like the SDK clients of these tests."""
pytestmark = pytest.mark.usefixtures("customer")


async def refusal(
    client: stripe.StripeClient, method: str, path: str, **params: Any
) -> stripe.StripeError:
    """Send through the SDK's raw request (its real encoding) and return the error it raised."""
    with pytest.raises(stripe.StripeError) as raised:
        await client.raw_request_async(method, path, **params)
    return raised.value


async def test_a_path_not_in_the_spec_is_a_404_in_stripe_error_shape(
    client: stripe.StripeClient,
) -> None:
    """An unknown path answers 404 with ``{"error": {"type": "invalid_request_error", ...}}``."""
    error = await refusal(client, "get", "/v1/charges")

    assert error.http_status == 404
    assert error.json_body is not None
    assert error.json_body["error"]["type"] == "invalid_request_error"
    assert error.json_body["error"]["message"] == "Unrecognized request URL (GET: /v1/charges)."


async def test_a_method_the_spec_does_not_list_for_a_path_is_a_404(
    client: stripe.StripeClient,
) -> None:
    """``/v1/billing/meter_events`` has POST only: GET is unrecognized."""
    error = await refusal(client, "get", "/v1/billing/meter_events")

    assert error.http_status == 404


async def test_a_request_without_an_authorization_header_is_a_401(
    stripe_server: StripeTestServer,
) -> None:
    """No API key: 401 and Stripe's "You did not provide an API key" message."""
    async with (
        aiohttp.ClientSession(timeout=BOUND) as session,
        session.get(f"{stripe_server.base_url}/v1/billing/meters") as response,
    ):
        status, body = response.status, await response.json()

    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("You did not provide an API key")


async def test_basic_authentication_with_the_key_as_user_name_is_accepted(
    stripe_server: StripeTestServer,
) -> None:
    """``Authorization: Basic base64("sk_test_...:")`` is as good as Bearer."""
    credentials = base64.b64encode(b"sk_test_basic:").decode()
    async with (
        aiohttp.ClientSession(
            timeout=BOUND, headers={"Authorization": f"Basic {credentials}"}
        ) as session,
        session.get(f"{stripe_server.base_url}/v1/billing/meters") as response,
    ):
        status = response.status

    assert status == 200


async def test_an_unknown_parameter_is_refused_with_its_name(client: stripe.StripeClient) -> None:
    """A top-level parameter the operation does not take: 400 ``parameter_unknown``."""
    error = await refusal(
        client,
        "post",
        "/v1/billing/meters",
        display_name="x",
        event_name="x",
        default_aggregation={"formula": "sum"},
        colour="blue",
    )

    assert (error.http_status, error.code) == (400, "parameter_unknown")
    assert isinstance(error, stripe.InvalidRequestError)
    assert error.param == "colour"


async def test_an_unknown_nested_parameter_is_refused_in_bracket_notation(
    client: stripe.StripeClient,
) -> None:
    """Unknown keys are refused at any depth, named as the form names them."""
    params = credit_grant()
    params["amount"]["monetary"]["colour"] = "blue"

    error = await refusal(client, "post", "/v1/billing/credit_grants", **params)

    assert isinstance(error, stripe.InvalidRequestError)
    assert (error.code, error.param) == ("parameter_unknown", "amount[monetary][colour]")


async def test_a_missing_required_parameter_is_named(client: stripe.StripeClient) -> None:
    """A meter without ``display_name``: 400 ``parameter_missing``, ``param=display_name``."""
    error = await refusal(
        client, "post", "/v1/billing/meters", event_name="x", default_aggregation={"formula": "sum"}
    )

    assert isinstance(error, stripe.InvalidRequestError)
    assert (error.http_status, error.code, error.param) == (
        400,
        "parameter_missing",
        "display_name",
    )


async def test_a_value_of_the_wrong_type_is_refused_with_its_path(
    client: stripe.StripeClient,
) -> None:
    """``amount[monetary][value]=ten`` is not the integer the schema asks for."""
    params = credit_grant()
    params["amount"]["monetary"]["value"] = "ten"

    error = await refusal(client, "post", "/v1/billing/credit_grants", **params)

    assert isinstance(error, stripe.InvalidRequestError)
    assert (error.code, error.param) == ("parameter_invalid_integer", "amount[monetary][value]")
    assert error.user_message == "Invalid integer: ten"


async def test_a_value_outside_the_enum_is_refused(client: stripe.StripeClient) -> None:
    """``category`` takes ``paid`` or ``promotional`` only."""
    error = await refusal(
        client, "post", "/v1/billing/credit_grants", **credit_grant(category="gift")
    )

    assert isinstance(error, stripe.InvalidRequestError)
    assert (error.http_status, error.param) == (400, "category")
    assert error.user_message == "Invalid category: must be one of paid, promotional"


async def test_a_string_longer_than_the_spec_allows_is_refused(client: stripe.StripeClient) -> None:
    """``identifier`` is at most 100 characters."""
    error = await refusal(
        client, "post", "/v1/billing/meter_events", **meter_event(identifier="x" * 101)
    )

    assert isinstance(error, stripe.InvalidRequestError)
    assert error.param == "identifier"


async def test_form_strings_become_the_types_the_schema_declares(
    client: stripe.StripeClient,
) -> None:
    """Integers sent as form strings come back as integers."""
    grant = await client.v1.billing.credit_grants.create_async(
        {**credit_grant(value=2500), "priority": 7}
    )

    assert grant.amount.monetary is not None
    assert (grant.amount.monetary.value, grant.priority) == (2500, 7)


async def test_a_list_of_objects_sent_by_the_sdk_is_decoded(client: stripe.StripeClient) -> None:
    """The SDK sends ``prices[0][id]=...&prices[1][id]=...``: a list of two prices."""
    params = credit_grant()
    params["applicability_config"] = {"scope": {"prices": [{"id": "price_a"}, {"id": "price_b"}]}}

    grant = await client.v1.billing.credit_grants.create_async(params)

    assert [p.id for p in grant.applicability_config.scope.prices or []] == ["price_a", "price_b"]


async def test_empty_brackets_append_to_a_list(stripe_server: StripeTestServer) -> None:
    """curl-style ``prices[][id]=a&prices[][id]=b`` is the same list of two prices."""
    body = (
        "customer=cus_a&amount[type]=monetary&amount[monetary][currency]=usd"
        "&amount[monetary][value]=100&applicability_config[scope][prices][][id]=price_a"
        "&applicability_config[scope][prices][][id]=price_b&expand[]=customer"
    )
    headers = {
        "Authorization": "Bearer sk_test_curl",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with (
        aiohttp.ClientSession(timeout=BOUND, headers=headers) as session,
        session.post(f"{stripe_server.base_url}/v1/billing/credit_grants", data=body) as response,
    ):
        grant = await response.json()

    assert grant["applicability_config"]["scope"]["prices"] == [
        {"id": "price_a"},
        {"id": "price_b"},
    ]


async def test_query_parameters_of_a_get_are_validated(
    client: stripe.StripeClient, meter: stripe.billing.Meter
) -> None:
    """Event summaries without the required ``start_time``: 400 naming it."""
    error = await refusal(
        client,
        "get",
        f"/v1/billing/meters/{meter.id}/event_summaries",
        customer="cus_a",
        end_time=60,
    )

    assert isinstance(error, stripe.InvalidRequestError)
    assert (error.code, error.param) == ("parameter_missing", "start_time")


async def test_a_bad_enum_in_a_query_string_is_refused(client: stripe.StripeClient) -> None:
    """``GET /v1/billing/meters?status=paused``: ``status`` is ``active`` or ``inactive``."""
    error = await refusal(client, "get", "/v1/billing/meters", status="paused")

    assert isinstance(error, stripe.InvalidRequestError)
    assert error.param == "status"


async def test_a_v2_json_body_is_validated_against_its_schema(
    client: stripe.StripeClient,
) -> None:
    """A v2 meter event without ``payload``: 400 naming ``payload``, in the v2 error shape."""
    error = await refusal(client, "post", "/v2/billing/meter_events", event_name="resolution")

    assert error.http_status == 400
    assert error.json_body is not None
    assert error.json_body["error"]["code"] == "parameter_missing"
    assert error.json_body["error"]["param"] == "payload"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"starting_after": "mtr_nope"}, "starting_after"),
    ],
)
async def test_list_pagination_parameters_are_checked(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    """``limit`` is 1 to 100, and a cursor must name an object of the list."""
    error = await refusal(client, "get", "/v1/billing/meters", **params)

    assert isinstance(error, stripe.InvalidRequestError)
    assert error.param == param
