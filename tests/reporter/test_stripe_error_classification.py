"""classify_stripe_error: which SDK and network errors are retried, which park a customer.

The errors are built as the stripe SDK (16.1) builds them from Stripe's
answers, including the cases the Stripe test server cannot produce (a
wrong API key, 402, 403, 409, 503, a lock timeout).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import stripe

from rating_service.reporter.gateway import PermanentStripeError, TransientStripeError
from rating_service.reporter.stripe_gateway import classify_stripe_error


def body(code: str | None = None, message: str = "refused", **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message, **extra}
    if code is not None:
        error["code"] = code
    return {"error": error}


def sdk_error(
    cls: type[stripe.StripeError],
    status: int,
    json_body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> stripe.StripeError:
    """What the SDK raises for this answer (v1 classes take these positional arguments)."""
    message = json_body["error"]["message"]
    raw = json.dumps(json_body)
    headers = {"request-id": "req_123", **(headers or {})}
    if cls in (stripe.InvalidRequestError, stripe.CardError):
        error = json_body["error"]
        return cls(message, error.get("param"), error.get("code"), raw, status, json_body, headers)
    return cls(message, raw, status, json_body, headers)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (sdk_error(stripe.RateLimitError, 429, body("rate_limit")), 429, "rate_limit"),
        (
            sdk_error(
                stripe.RateLimitError,
                429,
                body("rate_limit"),
                {"Stripe-Should-Retry": "false"},
            ),
            429,
            "rate_limit",
        ),
        (
            sdk_error(
                stripe.RateLimitError, 429, body("rate_limit"), {"Stripe-Should-Retry": "true"}
            ),
            429,
            "rate_limit",
        ),
        (sdk_error(stripe.RateLimitError, 400, body("rate_limit")), 400, "rate_limit"),
        (sdk_error(stripe.APIError, 500, body(type="api_error")), 500, ""),
        (sdk_error(stripe.APIError, 503, body(type="api_error")), 503, ""),
        (
            sdk_error(stripe.APIError, 409, body("idempotency_key_in_use")),
            409,
            "idempotency_key_in_use",
        ),
        (
            sdk_error(
                stripe.InvalidRequestError,
                400,
                body("lock_timeout"),
                {"stripe-should-retry": "true"},
            ),
            400,
            "lock_timeout",
        ),
        (
            stripe.TemporarySessionExpiredError(
                "expired",
                http_status=401,
                json_body=body("billing_meter_event_session_expired"),
                code="billing_meter_event_session_expired",
            ),
            401,
            "billing_meter_event_session_expired",
        ),
    ],
    ids=[
        "429",
        "429-should-retry-false",
        "429-should-retry-true",
        "400-rate-limit",
        "500",
        "503",
        "409-key-in-use",
        "should-retry-true",
        "session-expired",
    ],
)
def test_rate_limits_server_errors_conflicts_and_expired_sessions_are_transient(
    error: stripe.StripeError, status: int, code: str
) -> None:
    """Retrying later can succeed: transient, with Stripe's status and code (read from the body too)."""
    verdict = classify_stripe_error(error)

    assert isinstance(verdict, TransientStripeError)
    assert (verdict.status, verdict.code) == (status, code)


@pytest.mark.parametrize(
    "error",
    [
        stripe.APIConnectionError(  # type: ignore[no-untyped-call]
            "Unexpected error communicating with Stripe.", should_retry=True
        ),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        TimeoutError(),
    ],
    ids=["sdk-connection-error", "disconnected", "payload", "timeout"],
)
def test_no_answer_at_all_is_transient(error: stripe.StripeError | Exception) -> None:
    """Connection errors and timeouts, wrapped by the SDK or raised past it, are retried."""
    verdict = classify_stripe_error(error, action="sending 3 meter events")  # type: ignore[arg-type]

    assert isinstance(verdict, TransientStripeError)
    assert str(verdict).startswith("sending 3 meter events: no answer from Stripe")
    assert verdict.status == 0


def test_a_timeout_under_the_sdks_connection_error_is_named() -> None:
    """The SDK's message is generic; the cause says it was a timeout."""
    error = stripe.APIConnectionError("Unexpected error communicating with Stripe.")  # type: ignore[no-untyped-call]
    error.__cause__ = TimeoutError()

    verdict = classify_stripe_error(error)

    assert isinstance(verdict, TransientStripeError)
    assert "TimeoutError" in str(verdict)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            sdk_error(
                stripe.InvalidRequestError,
                404,
                body("resource_missing", "No such customer: 'cus_x'", param="id"),
            ),
            404,
            "resource_missing",
        ),
        (
            sdk_error(
                stripe.InvalidRequestError,
                400,
                body("parameter_invalid_integer", "Invalid integer: ten"),
            ),
            400,
            "parameter_invalid_integer",
        ),
        (sdk_error(stripe.CardError, 402, body("card_declined")), 402, "card_declined"),
        (
            sdk_error(stripe.IdempotencyError, 400, body(type="idempotency_error")),
            400,
            "",
        ),
    ],
    ids=["404-resource-missing", "400-invalid-parameter", "402", "idempotency-error"],
)
def test_requests_stripe_refuses_as_such_are_permanent(
    error: stripe.StripeError, status: int, code: str
) -> None:
    """Sending the same request again cannot help: permanent, with Stripe's status, code and message."""
    verdict = classify_stripe_error(error, action="retrieving customer cus_x")

    assert isinstance(verdict, PermanentStripeError)
    assert (verdict.status, verdict.code) == (status, code)
    assert str(verdict).startswith("retrieving customer cus_x: ")
    assert str(error.user_message) in str(verdict)
    assert "request req_123" in str(verdict)


def test_a_refused_api_key_is_permanent_and_says_so() -> None:
    """401 outside a meter event session: the configured key is wrong; the message says it."""
    error = sdk_error(stripe.AuthenticationError, 401, body(message="Invalid API Key provided"))

    verdict = classify_stripe_error(error)

    assert isinstance(verdict, PermanentStripeError)
    assert verdict.status == 401
    assert "API key" in str(verdict)
    assert "Invalid API Key provided" in str(verdict)


def test_a_key_without_the_permission_is_permanent_and_says_so() -> None:
    """403: a restricted key that may not call this endpoint."""
    error = sdk_error(
        stripe.PermissionError, 403, body(message="The provided key does not have access")
    )

    verdict = classify_stripe_error(error)

    assert isinstance(verdict, PermanentStripeError)
    assert verdict.status == 403
    assert "not allowed" in str(verdict)


@pytest.mark.parametrize(
    "error",
    [
        sdk_error(
            stripe.InvalidRequestError,
            400,
            body("duplicate_meter_event", "An event already exists with identifier cus_a:1-3."),
            {"Stripe-Should-Retry": "false"},
        ),
        sdk_error(
            stripe.InvalidRequestError,
            400,
            body(message="An event already exists with identifier cus_a:1-3."),
        ),
        sdk_error(
            stripe.InvalidRequestError, 400, body("duplicate_meter_event", "Duplicate event.")
        ),
    ],
    ids=["code-and-message", "message-only", "code-only"],
)
def test_a_duplicate_meter_event_identifier_is_already_delivered(error: stripe.StripeError) -> None:
    """Stripe has that usage already: not an error (None), by code or by v1's message."""
    assert classify_stripe_error(error) is None
