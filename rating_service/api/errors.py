"""One table from domain errors to gRPC codes, and the rich status every error carries.

Every error has exactly one ``google.rpc.ErrorInfo`` (domain ``rating.v1``) with
a reason from api.md; INVALID_ARGUMENT adds a ``google.rpc.BadRequest`` naming
each bad field. Unexpected failures answer INTERNAL with no stack trace.

``ErrorInterceptor`` is the one place a handler's exception becomes that
status: handlers raise, and never catch to abort.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from rating_service.api.interceptors import Context, Unary, UnaryInterceptor
from rating_service.domain import errors
from rating_service.ledger.writer import StoreOverloaded, StoreUnavailable
from rating_service.service.clock import ClockBehind

log = logging.getLogger(__name__)

DOMAIN = "rating.v1"


class ShuttingDown(Exception):
    """The server is draining before it stops; the call wrote nothing and may be retried."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down; retry the call (it wrote nothing)")


CODES: dict[type[Exception], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    errors.IdempotencyKeyReused: grpc.StatusCode.ALREADY_EXISTS,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    StoreOverloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    ClockBehind: grpc.StatusCode.UNAVAILABLE,
}
"""An error's code is that of the nearest class of its hierarchy named here (see ``code_of``)."""

_REASONS: dict[type[Exception], str] = {
    StoreUnavailable: "STORE_UNAVAILABLE",
    StoreOverloaded: "OVERLOADED",
    ShuttingDown: "SHUTTING_DOWN",
    ClockBehind: "CLOCK_BEHIND",
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


def to_status(error: Exception) -> status_pb2.Status:
    """The ``google.rpc.Status`` of an error; unknown errors become a bare INTERNAL."""
    code = code_of(error)
    if isinstance(error, errors.DomainError):
        reason, message, metadata = error.reason, error.message, error.metadata
    elif code is None:
        reason, message, metadata = "INTERNAL", "internal error; the call wrote nothing", {}
    else:
        reason, message, metadata = _nearest(_REASONS, error) or code.name, str(error), {}
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))]
    if isinstance(error, errors.InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    code = code or grpc.StatusCode.INTERNAL
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def is_expected(error: Exception) -> bool:
    """Whether ``error`` is one the table names (itself or a parent): no need to log it."""
    return code_of(error) is not None


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
                await context.abort_with_status(rpc_status.to_status(to_status(error)))

        return answered
