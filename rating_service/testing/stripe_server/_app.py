"""The HTTP layer: one aiohttp handler that runs every request through the same steps.

In order, each step able to answer on its own:

1. ``Authorization`` (Bearer, or Basic with the key as user name) present,
   else 401;
2. the path and method are in the spec, else 404;
3. on the meter event stream, the bearer token is a live session token,
   else 401 ``billing_meter_event_session_expired``;
4. the request-rate bucket, if configured, else 429;
5. a fault that strikes before the operation, if one is due;
6. parameters decoded and validated against the spec, else 400;
7. one synchronous meter event call per (customer, event name), else 429;
8. the ``Idempotency-Key`` (POST): a replay, a conflict, or a go-ahead;
9. the operation (meter event calls first wait ``meter_event_latency``, so
   that overlapping calls really overlap), its answer saved under the key;
10. a fault that strikes after the operation, if one is due.

Every request is logged in :attr:`StripeApp.requests` with what happened to
it. Responses carry ``Request-Id`` and echo ``Idempotency-Key`` and
``Stripe-Version`` as Stripe does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._errors import ApiVersion, JsonObject, StripeError
from ._faults import Fault, FaultKind, Faults
from ._form import decode_form
from ._idempotency import IdempotencyKeys, SavedResponse, fingerprint
from ._limits import InFlight, TokenBucket
from ._operations import OPERATIONS, Call, concurrency_key
from ._spec import Operation, Spec
from ._state import StripeState

log = logging.getLogger(__name__)

STREAM = "PostV2BillingMeterEventStream"
NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://docs.stripe.com/api#authentication for details."
)


@dataclass(frozen=True)
class RequestRecord:
    """What the server did with one request."""

    method: str
    path: str
    operation_id: str | None
    """The spec's ``operationId``, None for a path the spec does not have."""
    status: int | None
    """The HTTP status sent; None when no answer was sent (``timeout``, ``connection_reset``)."""
    idempotency_key: str | None
    replayed: bool
    """The answer was a saved one (``Idempotent-Replayed: true``)."""
    applied: bool
    """The operation ran (and may have changed the state)."""
    fault: FaultKind | None
    at: float
    """Server clock when the request arrived."""
    response: JsonObject | None = field(default=None, repr=False)
    """The JSON body sent, if any."""
    params: JsonObject | None = field(default=None, repr=False)
    """The request's parameters as validated (None if they never were): what was sent."""


@dataclass
class _Trace:
    method: str
    path: str
    at: float
    key: str | None
    operation_id: str | None = None
    status: int | None = None
    replayed: bool = False
    applied: bool = False
    fault: FaultKind | None = None
    body: JsonObject | None = None
    params: JsonObject | None = None


class _Dropped(Exception):
    """The connection was reset: there is no response to send."""


class StripeApp:
    def __init__(
        self,
        *,
        spec: Spec,
        state: StripeState,
        faults: Faults,
        clock: Callable[[], float],
        meter_event_latency: float,
        rate_limit: TokenBucket | None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.faults = faults
        self.requests: list[RequestRecord] = []
        self._clock = clock
        self._latency = meter_event_latency
        self._bucket = rate_limit
        self._keys = IdempotencyKeys()
        self._in_flight = InFlight()
        self._stopping = asyncio.Event()
        self._request_ids = 0

    def stopping(self) -> None:
        """Release requests held by a ``timeout`` fault (their connections are reset)."""
        self._stopping.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        trace = _Trace(request.method, request.path, self._clock(), key)
        api: ApiVersion = "v2" if request.path.startswith("/v2/") else "v1"
        try:
            status, body, headers = await self._serve(request, trace, api)
        except StripeError as error:
            status, body, headers = error.status, error.body(api), error.headers
        except _Dropped:
            self.requests.append(self._record(trace))
            return web.Response(status=500)  # never sent: the transport is gone
        except Exception:
            log.exception("stripe test server: error in %s %s", request.method, request.path)
            failure = StripeError(500, "An unknown error occurred.", type="api_error")
            status, body, headers = failure.status, failure.body(api), failure.headers
        trace.status, trace.body = status, body
        self.requests.append(self._record(trace))
        self._request_ids += 1
        headers = {"Request-Id": f"req_test{self._request_ids:010d}", **headers}
        if key is not None:
            headers["Idempotency-Key"] = key
        if "Stripe-Version" in request.headers:
            headers["Stripe-Version"] = request.headers["Stripe-Version"]
        return web.json_response(body, status=status, headers=headers)

    async def _serve(
        self, request: web.Request, trace: _Trace, api: ApiVersion
    ) -> tuple[int, JsonObject, dict[str, str]]:
        credential = _credential(request.headers.get("Authorization"))
        if credential is None:
            raise StripeError(401, NO_KEY)
        routed = self.spec.route(request.method, request.path)
        if routed is None:
            raise StripeError(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        operation, path_params = routed
        trace.operation_id = operation.operation_id
        if operation.operation_id == STREAM and not self.state.session_valid(credential, trace.at):
            raise _session_expired()
        if self._bucket is not None and not self._bucket.take(trace.at):
            raise _rate_limited(api, "Request rate limit exceeded.", "rate_limit")
        fault = self.faults.take(request.method, request.path, operation.template)
        trace.fault = fault.kind if fault else None
        if fault is not None and not fault.after_apply:
            await self._strike(fault, request, api)
        params = self.spec.parameters(operation, await _raw_parameters(request, operation))
        trace.params = copy.deepcopy(params)
        slot = concurrency_key(self.state, operation.operation_id, params)
        if slot is not None and not self._in_flight.acquire(slot):
            raise _too_many_concurrent(api, slot)
        try:
            saved = await self._run(operation, params, path_params, request, trace, api, slot)
        finally:
            if slot is not None:
                self._in_flight.release(slot)
        if fault is not None and fault.after_apply:
            await self._strike(fault, request, api)
        return saved.status, saved.body, dict(saved.headers)

    async def _run(
        self,
        operation: Operation,
        params: dict[str, Any],
        path_params: dict[str, str],
        request: web.Request,
        trace: _Trace,
        api: ApiVersion,
        slot: tuple[str, str] | None,
    ) -> SavedResponse:
        key = trace.key
        if key is not None:
            request_print = fingerprint(request.method, request.path, params)
            saved = self._keys.begin(key, request_print, trace.at)
            if saved is not None:
                trace.replayed = True
                return SavedResponse(
                    saved.status, saved.body, {**saved.headers, "Idempotent-Replayed": "true"}
                )
        try:
            if slot is not None:
                await asyncio.sleep(self._latency)
            call = Call(params, path_params, request.path, self._clock())
            trace.applied = True
            try:
                body = copy.deepcopy(OPERATIONS[operation.operation_id](self.state, call))
                response = SavedResponse(200, body, {})
            except StripeError as error:
                response = SavedResponse(error.status, error.body(api), error.headers)
        except BaseException:
            if key is not None:
                self._keys.abandon(key)
            raise
        if key is not None:
            self._keys.finish(key, response)
        return response

    async def _strike(self, fault: Fault, request: web.Request, api: ApiVersion) -> None:
        """Act out a fault: delay and go on, or answer with an error, or drop the connection."""
        if fault.kind is FaultKind.SLOW:
            await asyncio.sleep(fault.delay)
            return
        if fault.kind is FaultKind.TIMEOUT:
            await self._stopping.wait()
        if fault.kind in (FaultKind.TIMEOUT, FaultKind.CONNECTION_RESET):
            _reset(request)
            raise _Dropped
        if fault.kind is FaultKind.SESSION_EXPIRED:
            raise _session_expired()
        if fault.kind is FaultKind.SERVER_ERROR:
            raise StripeError(500, "An unknown error occurred (injected).", type="api_error")
        retry = "true" if fault.kind is FaultKind.RATE_LIMITED else "false"
        raise _rate_limited(api, "Request rate limit exceeded (injected).", "rate_limit", retry)

    def _record(self, trace: _Trace) -> RequestRecord:
        return RequestRecord(
            method=trace.method,
            path=trace.path,
            operation_id=trace.operation_id,
            status=trace.status,
            idempotency_key=trace.key,
            replayed=trace.replayed,
            applied=trace.applied,
            fault=trace.fault,
            at=trace.at,
            response=trace.body,
            params=trace.params,
        )


def _credential(header: str | None) -> str | None:
    """The API key or session token of an ``Authorization`` header, if there is one."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if not value or scheme.lower() not in ("bearer", "basic"):
        return None
    if scheme.lower() == "basic":
        # "Basic <base64 of api_key:>", or "Basic <api_key>" as it is.
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            value = base64.b64decode(value, validate=True).decode().split(":", 1)[0] or value
    return value


async def _raw_parameters(request: web.Request, operation: Operation) -> dict[str, Any]:
    if operation.method == "GET":
        return decode_form(request.query_string)
    text = await request.text()
    if operation.api == "v1":
        return decode_form(text)
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise StripeError(400, "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise StripeError(400, "The request body must be a JSON object.")
    return value


def _rate_limited(
    api: ApiVersion, message: str, v2_code: str, retry: str | None = None
) -> StripeError:
    return StripeError(
        429,
        message,
        type="rate_limit" if api == "v2" else "invalid_request_error",
        code=v2_code if api == "v2" else "rate_limit",
        headers={} if retry is None else {"Stripe-Should-Retry": retry},
    )


def _too_many_concurrent(api: ApiVersion, slot: tuple[str, str]) -> StripeError:
    """A second meter event call in flight for one customer and meter.

    v2 answers 409 ``too_many_concurrent_requests`` (Stripe's full OpenAPI
    spec of 2026-07, ``POST /v2/billing/meter_events``; the subset here lists
    it only under ``default``); v1 answers 429 ``rate_limit`` (Stripe's
    rate-limit docs: one concurrent call per customer and meter).
    """
    message = (
        f"Too many concurrent requests for customer {slot[0]} and meter event "
        f"{slot[1]}: send one at a time."
    )
    if api == "v2":
        return StripeError(
            409, message, type="too_many_concurrent_requests", code="too_many_concurrent_requests"
        )
    return _rate_limited(api, message, "too_many_concurrent_requests")


def _session_expired() -> StripeError:
    return StripeError(
        401,
        "The meter event session has expired or is unknown: create a new session.",
        type="temporary_session_expired",
        code="billing_meter_event_session_expired",
    )


def _reset(request: web.Request) -> None:
    """Close the connection with a TCP reset (linger 0), so the client sees no response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
