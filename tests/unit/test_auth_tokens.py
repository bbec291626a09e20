"""The tokens file and the scope table, without a server (api.auth)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from rating_service.api.auth import (
    SCOPES,
    UNASSIGNED,
    Authenticator,
    TokensFileError,
    parse_tokens,
    token_digest,
)

DIGEST = token_digest("s3cret")


def test_comments_blank_lines_and_several_scopes_are_read() -> None:
    """`#` starts a comment anywhere on a line; blank lines are skipped; scopes are a list."""
    table = parse_tokens(
        f"# who may call\n\n  worker {DIGEST} record,read  # the billing worker\n",
        "tokens",
    )

    (caller,) = table.callers
    assert (caller.name, caller.scopes) == ("worker", frozenset({"record", "read"}))
    assert table.identify("s3cret") == caller


def test_an_unknown_token_identifies_no_one() -> None:
    """A near miss (a prefix, another case) is no caller."""
    table = parse_tokens(f"worker {DIGEST} read\nother {token_digest('x')} admin\n", "tokens")

    assert table.identify("s3cre") is None
    assert table.identify("S3CRET") is None
    assert table.identify("x") is not None


def test_a_caller_may_be_given_a_rate_in_calls_per_second() -> None:
    table = parse_tokens(f"export {DIGEST} read rate=2.5\nworker {token_digest('w')} read\n", "t")

    assert [(c.name, c.rate) for c in table.callers] == [("export", 2.5), ("worker", None)]


def test_admin_implies_every_scope_and_no_scope_implies_another() -> None:
    table = parse_tokens(f"boss {DIGEST} admin\nclerk {token_digest('c')} consume\n", "t")
    boss, clerk = table.callers

    assert all(boss.may(scope) for scope in ("record", "consume", "read", "admin"))
    assert clerk.may("consume")
    assert not any(clerk.may(scope) for scope in ("record", "read", "admin"))
    assert not boss.may(UNASSIGNED)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (f"a {DIGEST} read\na {token_digest('y')} read\n", "line 2: caller 'a' is named twice"),
        (f"a {DIGEST} read\nb {DIGEST} read\n", "line 2: caller 'b' has the same token"),
        ("a s3cret read\n", "line 1: the token's digest must be 64 hex digits"),
        (f"a {DIGEST}\n", "line 1: expected"),
        (f"a {DIGEST} read,\n", "line 1: unknown scope ''"),
        (f"a {DIGEST} read rate=0\n", "line 1: the fourth field must be rate="),
        (f"a {DIGEST} read rate=fast\n", "line 1: the fourth field must be rate="),
        (f"a {DIGEST} read burst=5\n", "line 1: the fourth field must be rate="),
        (f"a {DIGEST} read rate=5 extra\n", "line 1: expected"),
    ],
)
def test_a_bad_line_is_refused_naming_the_file_and_the_line(text: str, complaint: str) -> None:
    with pytest.raises(TokensFileError, match=f"^tokens, {complaint}"):
        parse_tokens(text, "tokens")


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, trailing_metadata: tuple[Any, ...]) -> None:
        self.code = code
        self.trailing_metadata = trailing_metadata


class CallContext:
    """The parts of a grpc.aio servicer context the authenticator reads."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def abort(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...]
    ) -> None:
        raise Aborted(code, trailing_metadata)


async def test_a_method_missing_from_the_scope_table_is_refused_even_to_admin() -> None:
    """A new RPC is closed until it is given a scope: PERMISSION_DENIED, scope "unassigned"."""
    authenticator = Authenticator(
        "/rating.v1.RatingService/", parse_tokens(f"boss {DIGEST} admin", "t")
    )
    ran = []

    async def handler(request: Any, context: Any) -> str:
        ran.append(request)
        return "answered"

    unknown = authenticator.wrap("/rating.v1.RatingService/DropLedger", handler)
    known = authenticator.wrap("/rating.v1.RatingService/PutCustomer", handler)
    context = CallContext((("authorization", "Bearer s3cret"),))

    assert "DropLedger" not in SCOPES
    with pytest.raises(Aborted) as refused:
        await unknown(b"", context)
    assert await known(b"", context) == "answered"
    assert ran == [b""]
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    details = [d for key, d in refused.value.trailing_metadata if key == "grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details[0])
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert (info.reason, dict(info.metadata)) == (
        "PERMISSION_DENIED",
        {"required_scope": UNASSIGNED},
    )
