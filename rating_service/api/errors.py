"""One table from domain errors to gRPC codes, and the rich status every error carries.

Every error has exactly one ``google.rpc.ErrorInfo`` (domain ``rating.v1``) with
a reason from api.md; INVALID_ARGUMENT adds a ``google.rpc.BadRequest`` naming
each bad field. Unexpected failures answer INTERNAL with no stack trace.

A status is bounded whatever the caller sent: each of its strings (the message,
each field and description, each metadata value) at most ``ECHO_BYTES``, and
the violations listed at most ``STATUS_BYTES`` in all, so an error never
echoes more than 256 bytes of a request and its trailer always fits what a
default client accepts (8 KiB of metadata): the caller always gets the reason.

``ErrorInterceptor`` is the one place a handler's exception becomes that
status: handlers raise, and never catch to abort.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from rating_service.api.interceptors import Context, Unary, UnaryInterceptor
from rating_service.domain import errors
from rating_service.ledger.writer import StoreOverloaded, StoreUnavailable
from rating_service.service.alert_feed import AlertFeedClosed
from rating_service.service.clock import ClockBehind

log = logging.getLogger(__name__)

DOMAIN = "rating.v1"
ECHO_BYTES = 256
"""The most bytes (UTF-8) of any one string of a status; a longer one is cut, ending in ``…``."""
STATUS_BYTES = 4096
"""The most a status takes serialized (and so, base64-encoded, about 5.5 KiB of trailer):
the BadRequest lists the violations that fit, in order, and at least the first."""
_CUT = "…"


class ShuttingDown(Exception):
    """The server is draining before it stops; the call wrote nothing and may be retried."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down; retry the call (it wrote nothing)")


class Overloaded(Exception):
    """As many calls as the server admits are running; the call wrote nothing and may be retried."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the server is running its limit of {limit} calls; retry with backoff (the call wrote nothing)"
        )


CODES: dict[type[Exception], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    errors.IdempotencyKeyReused: grpc.StatusCode.ALREADY_EXISTS,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    StoreOverloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    AlertFeedClosed: grpc.StatusCode.UNAVAILABLE,
    ClockBehind: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""An error's code is that of the nearest class of its hierarchy named here (see ``code_of``)."""

_REASONS: dict[type[Exception], str] = {
    StoreUnavailable: "STORE_UNAVAILABLE",
    StoreOverloaded: "OVERLOADED",
    ShuttingDown: "SHUTTING_DOWN",
    AlertFeedClosed: "SHUTTING_DOWN",
    ClockBehind: "CLOCK_BEHIND",
    Overloaded: "OVERLOADED",
}
"""The reasons of the errors that are not DomainErrors (those carry their own)."""

T = TypeVar("T")


def _nearest(table: Mapping[type[Exception], T], error: Exception) -> T | None:
    """The entry of the first class in ``error``'s method resolution order that ``table`` has."""
    for kind in type(error).__mro__:
        found = table.get(kind)
        if found is not None:
            return found
    return None


def code_of(error: Exception) -> grpc.StatusCode | None:
    """The gRPC code of an expected error, inherited from its parents; None when unexpected."""
    return _nearest(CODES, error)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def capped(text: str, limit: int = ECHO_BYTES) -> str:
    """``text`` if its UTF-8 takes at most ``limit`` bytes, else as much of it as fits with ``…``."""
    if len(text) * 4 <= limit:  # no character takes more than 4 bytes
        return text
    raw = text.encode(errors="replace")
    if len(raw) <= limit:
        return text
    kept = raw[: limit - len(_CUT.encode())]
    return kept.decode(errors="ignore") + _CUT  # "ignore" drops a character cut in two


def _bad_request(violations: Iterable[errors.FieldViolation], budget: int) -> any_pb2.Any:
    """The BadRequest of ``violations`` (capped), listing those that fit ``budget`` bytes."""
    bad = error_details_pb2.BadRequest()
    for v in violations:
        entry = error_details_pb2.BadRequest.FieldViolation(
            field=capped(v.field), description=capped(v.description)
        )
        budget -= entry.ByteSize() + 3  # and its tag and length inside the BadRequest
        if budget < 0 and bad.field_violations:
            break
        bad.field_violations.append(entry)
    return _pack(bad)


_EMPTY_BAD_REQUEST = _pack(error_details_pb2.BadRequest()).ByteSize() + 6
"""What a BadRequest takes in a status besides its violations: the Any's type URL, tags, lengths."""


def to_status(error: Exception) -> status_pb2.Status:
    """The ``google.rpc.Status`` of an error; unknown errors become a bare INTERNAL."""
    code = code_of(error)
    if isinstance(error, errors.DomainError):
        reason, message, metadata = error.reason, error.message, error.metadata
    elif code is None:
        reason, message, metadata = "INTERNAL", "internal error; the call wrote nothing", {}
    else:
        reason, message, metadata = _nearest(_REASONS, error) or code.name, str(error), {}
    info = error_details_pb2.ErrorInfo(
        reason=reason,
        domain=DOMAIN,
        metadata={key: capped(value) for key, value in metadata.items()},
    )
    status = status_pb2.Status(
        code=(code or grpc.StatusCode.INTERNAL).value[0],
        message=capped(message),
        details=[_pack(info)],
    )
    if isinstance(error, errors.InvalidArgument):
        budget = STATUS_BYTES - status.ByteSize() - _EMPTY_BAD_REQUEST
        status.details.append(_bad_request(error.violations, budget))
    return status


def is_expected(error: Exception) -> bool:
    """Whether ``error`` is one the table names (itself or a parent): no need to log it."""
    return code_of(error) is not None


async def abort_with(context: Context, status: grpc.Status) -> NoReturn:
    """``context.abort_with_status``, keeping the trailing metadata already set (the request
    id the access log echoes), which grpc's own would replace."""
    kept = tuple(context.trailing_metadata() or ())
    await context.abort(
        status.code, status.details, trailing_metadata=(*kept, *status.trailing_metadata)
    )


class ErrorInterceptor(UnaryInterceptor):
    """Aborts a call whose handler raised with that error's rich status; logs unexpected ones.

    Apply it innermost (last): the wrappers outside it (drain, metrics) then see
    the call end with the final code. grpc's own ``AbortError`` (raised by
    ``context.abort*``, when a call is already answered) passes through untouched.
    """

    def wrap(self, method: str, inner: Unary) -> Unary:
        async def answered(request: Any, context: Context) -> Any:
            try:
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                if not is_expected(error):
                    log.error("unexpected failure in %s", method, exc_info=error)
                await abort_with(context, rpc_status.to_status(to_status(error)))

        return answered
