"""Decoding google.rpc.Status into RatingError subclasses (rating_client._errors)."""

from __future__ import annotations

import grpc
import pytest
import rating_client
from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from rating_client import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RatingError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnexpectedError,
    error_from_rpc_error,
    error_from_status,
)


def packed(message: Message) -> Any:
    detail = Any()
    detail.Pack(message)
    return detail


def invalid_quantity_status() -> status_pb2.Status:
    return status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
        message="quantity must be between 1 and 1000000000",
        details=[
            packed(
                error_details_pb2.ErrorInfo(
                    reason="INVALID_FIELD", domain="rating.v1", metadata={"field": "quantity"}
                )
            ),
            packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="quantity", description="must be between 1 and 1000000000"
                        ),
                        error_details_pb2.BadRequest.FieldViolation(
                            field="customer_id", description="is required"
                        ),
                    ]
                )
            ),
        ],
    )


def test_status_details_become_error_attributes() -> None:
    """ErrorInfo gives reason and metadata, BadRequest gives the field violations."""
    error = error_from_status(invalid_quantity_status())
    assert isinstance(error, InvalidArgumentError)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_FIELD"
    assert error.message == "quantity must be between 1 and 1000000000"
    assert error.metadata == {"field": "quantity"}
    assert error.field_violations == [
        ("quantity", "must be between 1 and 1000000000"),
        ("customer_id", "is required"),
    ]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExistsError),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
        (grpc.StatusCode.UNAUTHENTICATED, UnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.INTERNAL, UnexpectedError),
        (grpc.StatusCode.ABORTED, UnexpectedError),
    ],
)
def test_each_code_maps_to_its_error_class(code: grpc.StatusCode, cls: type[RatingError]) -> None:
    """The class follows the gRPC code; codes the contract does not use are unexpected."""
    error = error_from_status(status_pb2.Status(code=code.value[0], message="m"))
    assert type(error) is cls
    assert isinstance(error, RatingError)
    assert error.code is code


def test_a_status_without_details_has_empty_reason_and_violations() -> None:
    """Missing details leave reason empty rather than failing the decoding."""
    error = error_from_status(status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0]))
    assert (error.reason, error.metadata, error.field_violations) == ("", {}, [])


def test_an_unknown_numeric_code_decodes_as_unknown() -> None:
    """A code number gRPC does not define is reported as UNKNOWN."""
    error = error_from_status(status_pb2.Status(code=99, message="from the future"))
    assert isinstance(error, UnexpectedError)
    assert error.code is grpc.StatusCode.UNKNOWN


def test_only_the_first_error_info_counts_and_other_details_are_skipped() -> None:
    """Unrelated detail types are ignored and a second ErrorInfo cannot override the first."""
    status = status_pb2.Status(
        code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
        details=[
            packed(error_details_pb2.RetryInfo()),
            packed(error_details_pb2.ErrorInfo(reason="NO_PRICE")),
            packed(error_details_pb2.ErrorInfo(reason="INSUFFICIENT_UNITS")),
        ],
    )
    assert error_from_status(status).reason == "NO_PRICE"


def test_rpc_error_trailers_are_decoded_like_a_status() -> None:
    """grpc-status-details-bin on an aio call error yields the same typed error."""
    status = invalid_quantity_status()
    rpc_error = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(
            ("grpc-status-details-bin", status.SerializeToString())
        ),
        details=status.message,
    )
    error = error_from_rpc_error(rpc_error)
    assert isinstance(error, InvalidArgumentError)
    assert error.reason == "INVALID_FIELD"
    assert error.field_violations == error_from_status(status).field_violations


def test_rpc_error_without_trailers_keeps_its_own_code_and_message() -> None:
    """A transport failure with no rich status still becomes a typed error."""
    rpc_error = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(),
        details="failed to connect to all addresses",
    )
    error = error_from_rpc_error(rpc_error)
    assert isinstance(error, UnavailableError)
    assert (error.reason, error.message) == ("", "failed to connect to all addresses")


def test_rpc_error_whose_details_contradict_the_call_trusts_the_call() -> None:
    """Status details with another code than the call's are ignored, not raised."""
    status = invalid_quantity_status()
    rpc_error = grpc.aio.AioRpcError(
        grpc.StatusCode.INTERNAL,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(
            ("grpc-status-details-bin", status.SerializeToString())
        ),
        details="boom",
    )
    error = error_from_rpc_error(rpc_error)
    assert isinstance(error, UnexpectedError)
    assert (error.code, error.reason, error.message) == (grpc.StatusCode.INTERNAL, "", "boom")


def test_str_names_code_reason_message_and_fields() -> None:
    """The printed error carries what a person needs to act on it."""
    text = str(error_from_status(invalid_quantity_status()))
    assert text.startswith("INVALID_ARGUMENT INVALID_FIELD: quantity must be")
    assert "customer_id: is required" in text


def test_public_api_is_exactly_what_all_lists() -> None:
    """Every name in __all__ exists, and no public name is left out of it."""
    public = {name for name in vars(rating_client) if not name.startswith("_")}
    assert set(rating_client.__all__) == public - {"v1"}
