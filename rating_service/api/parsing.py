"""Requests are parsed inside the wrappers, so bytes that do not parse are refused like any field.

grpc parses a request before any handler runs: bytes that do not parse (a
string field that is not UTF-8, a truncated message) fail there with UNKNOWN
and a logged traceback. So RatingService's methods are registered with an
identity deserializer (``interceptors.add_servicer``) and ``RequestParser``,
innermost, parses the bytes: what does not parse is INVALID_ARGUMENT /
INVALID_FIELD like any bad field, and costs at most one short log line per
``LOG_INTERVAL`` seconds however many arrive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError

from rating_service.api.interceptors import CALLER, Context, Unary, UnaryInterceptor
from rating_service.domain.errors import FieldViolation, InvalidArgument

log = logging.getLogger(__name__)

LOG_INTERVAL = 10.0
"""Seconds between two log lines about requests that do not parse."""


class UnparsableRequest(InvalidArgument):
    """The request's bytes are not a message of its type; the field is the request itself ("")."""

    def __init__(self, type_name: str) -> None:
        super().__init__(
            FieldViolation(
                "", f"is not a {type_name}: a string is not UTF-8 or the message is truncated"
            )
        )
        self.message = f"invalid request: the bytes do not parse as {type_name}"


class RequestParser(UnaryInterceptor):
    """Parses the requests of ``service``'s methods (apply it innermost)."""

    parses_requests = True

    def __init__(
        self, service: ServiceDescriptor, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._types = {
            f"/{service.full_name}/{rpc.name}": message_factory.GetMessageClass(rpc.input_type)
            for rpc in service.methods
        }
        self._clock = clock
        self._quiet_until = float("-inf")
        self._unlogged = 0

    def applies_to(self, method: str) -> bool:
        return method in self._types

    def wrap(self, method: str, inner: Unary) -> Unary:
        request_type = self._types[method]
        parse = request_type.FromString
        type_name = request_type.DESCRIPTOR.full_name

        async def parsed(data: bytes, context: Context) -> Any:
            try:
                request = parse(data)
            except DecodeError as error:
                self._note(method, context, error)
                raise UnparsableRequest(type_name) from None
            return await inner(request, context)

        return parsed

    def _note(self, method: str, context: Context, error: DecodeError) -> None:
        """One line now, then none for ``LOG_INTERVAL`` seconds (the next says how many)."""
        now = self._clock()
        if now < self._quiet_until:
            self._unlogged += 1
            return
        log.warning(
            "refused a request to %s from %s (caller %s) that does not parse (%s)%s",
            method,
            context.peer(),
            CALLER.get(),
            str(error)[:200],
            f"; {self._unlogged} more since the last such line" if self._unlogged else "",
        )
        self._quiet_until, self._unlogged = now + LOG_INTERVAL, 0
