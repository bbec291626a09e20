"""Errors raised by the rating client, one class per family of gRPC code.

    RatingError                      (any failed call; branch on .reason)
     ├── InvalidArgumentError        INVALID_ARGUMENT
     ├── NotFoundError               NOT_FOUND
     ├── AlreadyExistsError          ALREADY_EXISTS
     ├── FailedPreconditionError     FAILED_PRECONDITION
     ├── ResourceExhaustedError      RESOURCE_EXHAUSTED
     ├── UnauthenticatedError        UNAUTHENTICATED
     ├── PermissionDeniedError       PERMISSION_DENIED
     ├── UnavailableError            UNAVAILABLE (raised once retries are spent)
     ├── DeadlineExceededError       DEADLINE_EXCEEDED
     └── UnexpectedError             any other code (INTERNAL, UNKNOWN, ...)

The class says what kind of failure it is; ``reason`` (from the
``google.rpc.ErrorInfo`` the server attaches, e.g. ``CUSTOMER_NOT_FOUND``)
says exactly which one, so programs can branch on it.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage

# No py.typed marker in googleapis-common-protos: see rating_client._money.
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RatingError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnexpectedError",
    "error_from_rpc_error",
    "error_from_status",
]


class RatingError(Exception):
    """A call to the rating service failed; ``reason`` says why."""

    code: grpc.StatusCode
    """The gRPC status code."""
    reason: str
    """``ErrorInfo.reason``, e.g. ``NO_PRICE``; empty when the server sent none."""
    message: str
    """The human-readable status message."""
    metadata: dict[str, str]
    """``ErrorInfo.metadata``: the dynamic values of the failure."""
    field_violations: list[tuple[str, str]]
    """``(field, description)`` pairs from ``google.rpc.BadRequest``."""
    retry_delay: float | None
    """Seconds the server asks to wait before trying again (``google.rpc.RetryInfo``, e.g.
    with ``RATE_LIMITED``); None when it sent none."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[tuple[str, str]] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations or [])
        self.retry_delay = retry_delay

    def __str__(self) -> str:
        label = f"{self.code.name} {self.reason}" if self.reason else self.code.name
        text = f"{label}: {self.message}"
        if self.field_violations:
            fields = "; ".join(f"{field}: {why}" for field, why in self.field_violations)
            text += f" ({fields})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.reason!r}, {self.message!r})"


class InvalidArgumentError(RatingError):
    """The request is malformed; ``field_violations`` name the fields."""


class NotFoundError(RatingError):
    """The customer, bucket or outcome named does not exist."""


class AlreadyExistsError(RatingError):
    """An idempotency key was reused with a different payload."""


class FailedPreconditionError(RatingError):
    """The state must change first (a price, units, an active bucket)."""


class ResourceExhaustedError(RatingError):
    """The server shed load; slow down before trying again."""


class UnauthenticatedError(RatingError):
    """Credentials are missing or wrong."""


class PermissionDeniedError(RatingError):
    """The credentials do not allow this call."""


class UnavailableError(RatingError):
    """The server could not be reached, even after retrying."""


class DeadlineExceededError(RatingError):
    """The deadline passed; a write may have happened, and retrying it is safe."""


class UnexpectedError(RatingError):
    """A code the contract does not name for this service (INTERNAL, ...)."""


_CLASS_BY_CODE: dict[grpc.StatusCode, type[RatingError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}

_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def error_from_rpc_error(error: grpc.aio.AioRpcError) -> RatingError:
    """Return the RatingError for a failed call, with its rich status details."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # The details contradict the call's own code or message: trust the call.
        status = None
    if status is not None:
        return error_from_status(status)
    return _build(error.code(), error.details() or "", ())


def error_from_status(status: status_pb2.Status) -> RatingError:
    """Return the RatingError for a ``google.rpc.Status``, e.g. one RecordOutcomes item."""
    code = _CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return _build(code, status.message, status.details)


def _build(code: grpc.StatusCode, message: str, details: Iterable[AnyMessage]) -> RatingError:
    """Pick the class for ``code`` and unpack ErrorInfo and BadRequest details."""
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    retry_delay: float | None = None
    info_found = False  # the contract sends exactly one; the first one wins
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        # Unpack answers False, without raising, when the detail is another type.
        if not info_found and detail.Unpack(info):
            reason, metadata, info_found = info.reason, dict(info.metadata), True
        elif detail.Unpack(bad_request):
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
        elif detail.Unpack(retry):
            retry_delay = max(0.0, retry.retry_delay.ToNanoseconds() / 1e9)
    cls = _CLASS_BY_CODE.get(code, UnexpectedError)
    return cls(
        code,
        message,
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        retry_delay=retry_delay,
    )
