"""Helpers of the auth tests: a tokens file with a caller per scope, channels that send a token."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from rating_service.api.auth import token_digest

SCOPED_CALLERS = {
    "recorder": "record",
    "consumer": "consume",
    "reader": "read",
    "operator": "admin",
}
"""A caller per scope, named as in the tokens file the tests write."""


@dataclass(frozen=True)
class Tokens:
    """A tokens file and the tokens of its callers (by caller name)."""

    path: Path
    by_caller: Mapping[str, str]

    def __getitem__(self, caller: str) -> str:
        return self.by_caller[caller]


def write_tokens(path: Path, scopes_by_caller: Mapping[str, str] = SCOPED_CALLERS) -> Tokens:
    """A tokens file giving each caller a fresh random token with its scopes."""
    tokens = {caller: secrets.token_urlsafe(24) for caller in scopes_by_caller}
    lines = ["# caller, sha256 of the token, scopes", ""]
    lines += [
        f"{caller} {token_digest(tokens[caller])} {scopes}"
        for caller, scopes in scopes_by_caller.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return Tokens(path, tokens)


def bearer(token: str) -> tuple[tuple[str, str]]:
    """The call metadata that carries ``token``."""
    return (("authorization", f"Bearer {token}"),)


class SendToken(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds ``authorization: Bearer <token>`` to every unary call of a channel."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *bearer(self._token))
        return await continuation(details._replace(metadata=metadata), request)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo of a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None, f"the error carries no google.rpc.Status: {error}"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("the error carries no ErrorInfo")
