"""The error table and wrapper (rating_service.api.errors): codes by class hierarchy.

A domain error's code is that of the nearest class of its hierarchy the
table names, so a new subclass answers with its parent's code instead of
INTERNAL; every status carries one ErrorInfo (domain ``rating.v1``), plus a
BadRequest for INVALID_ARGUMENT. ErrorInterceptor aborts a call with that
status, whatever its handler raised.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from rating_service.api.errors import ErrorInterceptor, ShuttingDown, is_expected, to_status
from rating_service.domain import errors
from rating_service.ledger.writer import StoreOverloaded, StoreUnavailable


def infos(status: status_pb2.Status) -> list[tuple[str, str, dict[str, str]]]:
    """(domain, reason, metadata) of each ErrorInfo the status carries."""
    found = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            found.append((info.domain, info.reason, dict(info.metadata)))
    return found


def bad_fields(status: status_pb2.Status) -> list[str]:
    """The fields the status's BadRequest names (none without one)."""
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


class CustomerArchived(errors.CustomerNotFound):
    """A kind of unknown customer that the table does not name."""


class SpendLimitReached(errors.PreconditionFailed):
    """A new refusal with a reason of its own, under a category the table names."""

    reason = "SPEND_LIMIT_REACHED"


class TooManyAttributes(errors.InvalidArgument):
    """A more precise invalid argument."""


# fmt: off
API_MD_TABLE = [
    pytest.param(errors.InvalidArgument.field("customer_id", "is required"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", id="invalid-argument"),
    pytest.param(errors.CustomerNotFound("no customer"), grpc.StatusCode.NOT_FOUND, "CUSTOMER_NOT_FOUND", id="customer-not-found"),
    pytest.param(errors.NoPrice("no price"), grpc.StatusCode.FAILED_PRECONDITION, "NO_PRICE", id="no-price"),
    pytest.param(errors.BucketNotFound("no bucket"), grpc.StatusCode.NOT_FOUND, "BUCKET_NOT_FOUND", id="bucket-not-found"),
    pytest.param(errors.InsufficientUnits("too few"), grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_UNITS", id="insufficient-units"),
    pytest.param(errors.BucketNotActive("not now"), grpc.StatusCode.FAILED_PRECONDITION, "BUCKET_NOT_ACTIVE", id="bucket-not-active"),
    pytest.param(errors.IdempotencyKeyReused("reused"), grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED", id="idempotency-key-reused"),
    pytest.param(errors.OutcomeNotFound("no outcome"), grpc.StatusCode.NOT_FOUND, "OUTCOME_NOT_FOUND", id="outcome-not-found"),
    pytest.param(errors.OutcomeReversed("reversed"), grpc.StatusCode.FAILED_PRECONDITION, "OUTCOME_REVERSED", id="outcome-reversed"),
    pytest.param(StoreUnavailable("down"), grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE", id="store-unavailable"),
    pytest.param(StoreOverloaded("busy"), grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED", id="store-overloaded"),
    pytest.param(ShuttingDown(), grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN", id="shutting-down"),
]
# fmt: on


@pytest.mark.parametrize(("error", "code", "reason"), API_MD_TABLE)
def test_every_error_of_the_table_keeps_its_code_and_reason(
    error: Exception, code: grpc.StatusCode, reason: str
) -> None:
    """Each class answers the code and reason api.md gives it, and is not logged as unexpected."""
    status = to_status(error)

    assert (status.code, [(d, r) for d, r, _ in infos(status)]) == (
        code.value[0],
        [("rating.v1", reason)],
    )
    assert is_expected(error)


def test_a_new_subclass_of_a_domain_error_gets_its_parents_code_and_reason() -> None:
    """A subclass missing from the table answers as its parent (NOT_FOUND), not INTERNAL."""
    error = CustomerArchived("customer 'acme' is archived", customer_id="acme")

    status = to_status(error)

    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert infos(status) == [("rating.v1", "CUSTOMER_NOT_FOUND", {"customer_id": "acme"})]
    assert status.message == "customer 'acme' is archived"
    assert is_expected(error)


def test_a_new_error_under_a_category_gets_the_categorys_code_and_its_own_reason() -> None:
    """A new FAILED_PRECONDITION refusal needs a class and a reason, no new row in the table."""
    status = to_status(SpendLimitReached("the hard limit is reached"))

    assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert infos(status) == [("rating.v1", "SPEND_LIMIT_REACHED", {})]


def test_a_subclass_of_invalid_argument_keeps_its_bad_request() -> None:
    """INVALID_ARGUMENT, INVALID_FIELD and the BadRequest naming the field."""
    status = to_status(TooManyAttributes(errors.FieldViolation("attributes", "at most 16")))

    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [r for _, r, _ in infos(status)] == ["INVALID_FIELD"]
    assert bad_fields(status) == ["attributes"]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RuntimeError("secret detail"), id="any-other-exception"),
        pytest.param(errors.DomainError("no category"), id="a-bare-domain-error"),
    ],
)
def test_an_error_outside_the_table_is_internal_and_unexpected(error: Exception) -> None:
    """INTERNAL (logged by the server); a non-domain error's text never reaches the caller."""
    status = to_status(error)

    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert "secret detail" not in status.message
    assert not is_expected(error)


# ---- ErrorInterceptor ---------------------------------------------------------------------

METHOD = "/rating.v1.RatingService/GetBalance"


class Context:
    """What the wrapper uses of a grpc.aio context: abort records (code, details, trailing
    metadata, which keeps what was set before), then raises."""

    def __init__(self, trailing: tuple[tuple[str, str], ...] = ()) -> None:
        self.aborted_with: list[tuple[object, ...]] = []
        self._trailing = trailing

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing

    async def abort(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...]
    ) -> NoReturn:
        self.aborted_with.append((code, details, trailing_metadata))
        raise grpc.aio.AbortError("aborted")


async def call_wrapped(handler: Any, context: Context) -> Any:
    """``handler`` called through the wrapper, as the server calls it."""
    wrapped: Any = ErrorInterceptor().wrap(METHOD, handler)
    return await wrapped(object(), context)


def raising(error: Exception) -> Any:
    async def handler(request: object, context: Context) -> NoReturn:
        raise error

    return handler


async def test_a_domain_error_aborts_with_its_rich_status_and_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """NOT_FOUND with the status to_status builds; an expected error logs nothing."""
    error = errors.CustomerNotFound("no customer 'acme'", customer_id="acme")
    context = Context(trailing=(("x-request-id", "req-1"),))

    with pytest.raises(grpc.aio.AbortError):
        await call_wrapped(raising(error), context)

    status = rpc_status.to_status(to_status(error))
    assert context.aborted_with == [
        (status.code, status.details, (("x-request-id", "req-1"), *status.trailing_metadata))
    ]
    assert status.code is grpc.StatusCode.NOT_FOUND
    assert not caplog.records


async def test_an_unexpected_error_aborts_internal_and_is_logged_once_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """INTERNAL for the caller; one ERROR line naming the method, with exc_info, for us."""
    context = Context()

    with pytest.raises(grpc.aio.AbortError):
        await call_wrapped(raising(RuntimeError("boom")), context)

    assert [s[0] for s in context.aborted_with] == [grpc.StatusCode.INTERNAL]
    assert [(r.levelno, METHOD in r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, True)
    ]
    assert caplog.records[0].exc_info is not None


async def test_grpcs_own_abort_passes_through_untouched() -> None:
    """A handler that aborted itself is already answered: the wrapper neither aborts nor maps."""
    context = Context()
    own = grpc.aio.AbortError("the handler aborted")

    with pytest.raises(grpc.aio.AbortError) as raised:
        await call_wrapped(raising(own), context)

    assert raised.value is own
    assert context.aborted_with == []


async def test_an_answer_is_returned_as_it_is() -> None:
    """No exception, no abort: the handler's response comes back."""
    context = Context()

    async def handler(request: object, context: Context) -> str:
        return "answer"

    assert await call_wrapped(handler, context) == "answer"
    assert context.aborted_with == []
