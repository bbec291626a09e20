"""What a failed Stripe call means to the reporter: retry it, park the customer, or carry on.

The reporter only knows the gateway's two errors (``gateway.py``); this is
the one place where the SDK's exceptions are sorted into them::

    stripe.StripeError, or a network error the SDK let through
     |
     |  classify_stripe_error()
     +-- None                  already delivered: a duplicate meter event identifier
     +-- TransientStripeError  back off and retry: no answer (connection, timeout),
     |                         429 or any rate limit error (with or without
     |                         Stripe-Should-Retry), 409 (idempotency
     |                         key in use), 5xx, an expired meter event session, or
     |                         anything Stripe marks Stripe-Should-Retry: true
     +-- PermanentStripeError  Stripe refused the request as such: 400/402/403/404
                               (resource_missing, parameter_invalid_*, idempotency_error...),
                               and 401 outside a meter event session: the API key is wrong

Why a duplicate is not an error: meter event identifiers are derived from
the ledger range they cover, so Stripe refusing one as already seen means
that usage is already in Stripe. Stripe's spec names the code
``duplicate_meter_event``; its v1 endpoint is observed to send only the
message "An event already exists with identifier ...", so either counts.

The SDK drops ``code`` from some v1 errors (``RateLimitError``,
``AuthenticationError``), so it is read from the JSON body as well.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import stripe

from .gateway import PermanentStripeError, TransientStripeError

SESSION_EXPIRED = "billing_meter_event_session_expired"
DUPLICATE_METER_EVENT = "duplicate_meter_event"
DUPLICATE_MESSAGE_PREFIX = "An event already exists with identifier"
CANCEL_REFUSED = "invalid_cancel_configuration"
"""The spec's one named error of a meter event cancel (too late, or already cancelled)."""
ALREADY_CANCELLED = "already been canceled"
"""What a refused cancel says when the event is cancelled already (an assumption)."""

NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What aiohttp can raise past the SDK (it wraps only the sending, not reading the body)."""

ClassifiableError = stripe.StripeError | aiohttp.ClientError | TimeoutError


def classify_stripe_error(
    error: ClassifiableError, *, action: str = ""
) -> TransientStripeError | PermanentStripeError | None:
    """Sort an SDK or network error (see the module docstring); None means already delivered.

    ``action`` ("retrieving customer cus_a") opens the message, so a parked
    customer's log line says what was being done.
    """
    if isinstance(error, NETWORK_ERRORS):
        return TransientStripeError(_say(action, f"no answer from Stripe: {_network(error)}"))
    status = error.http_status or 0
    code = _code(error)
    message = str(error.user_message or "")
    if code == DUPLICATE_METER_EVENT or message.startswith(DUPLICATE_MESSAGE_PREFIX):
        return None
    if isinstance(error, stripe.APIConnectionError):
        cause = error.__cause__
        reason = _network(cause) if isinstance(cause, Exception) else message
        return TransientStripeError(_say(action, f"no answer from Stripe: {reason}"))
    detail = _detail(message, status, code, error.request_id)
    if isinstance(error, stripe.TemporarySessionExpiredError) or code == SESSION_EXPIRED:
        return TransientStripeError(
            _say(action, f"the meter event session expired: {detail}"),
            code=code or SESSION_EXPIRED,
            status=status,
        )
    if (
        isinstance(error, stripe.RateLimitError)  # also Stripe's older 400 with code rate_limit
        or status in (409, 429)
        or status >= 500
        or _header(error.headers, "stripe-should-retry") == "true"
    ):
        return TransientStripeError(_say(action, detail), code=code, status=status)
    if isinstance(error, stripe.AuthenticationError) or status == 401:
        return PermanentStripeError(
            _say(action, f"Stripe refused the API key: it is wrong, revoked or expired ({detail})"),
            code=code,
            status=status,
        )
    if isinstance(error, stripe.PermissionError) or status == 403:
        return PermanentStripeError(
            _say(action, f"the API key is not allowed to do this (a restricted key?): {detail}"),
            code=code,
            status=status,
        )
    return PermanentStripeError(_say(action, detail), code=code, status=status)


def _code(error: stripe.StripeError) -> str:
    if error.code:
        return error.code
    body = error.json_body
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    return ""


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A response header by name, whatever its case (aiohttp's are case-insensitive, dicts not)."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _detail(message: str, status: int, code: str, request_id: str | None) -> str:
    facts = [f"HTTP {status}" if status else "no HTTP status"]
    if code:
        facts.append(f"code {code}")
    if request_id:
        facts.append(f"request {request_id}")
    return f"{message or 'no message'} ({', '.join(facts)})"


def _network(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _say(action: str, text: str) -> str:
    return f"{action}: {text}" if action else text
