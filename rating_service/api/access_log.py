"""One log line per call: method, final code, duration, caller and request id.

The request id is the caller's ``x-request-id`` metadata when it sends a usable one (up to
128 printable ASCII characters), else one made here; either way it is echoed in the
response's trailing metadata, so a caller can quote it and an operator find the line. The
line never holds a request's body, a token or any other metadata.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import grpc

from rating_service.api.interceptors import CALLER, Context, Unary, UnaryInterceptor

LOGGER = "rating_service.access"
log = logging.getLogger(LOGGER)

REQUEST_ID = "x-request-id"
MAX_REQUEST_ID = 128
HEALTH = "/grpc.health.v1.Health/"


def request_id_of(context: Context) -> str:
    """The caller's request id when usable, else a new one."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID and isinstance(value, str):
            if 0 < len(value) <= MAX_REQUEST_ID and value.isascii() and value.isprintable():
                return value
            break
    return os.urandom(16).hex()


def caller_of(context: Context) -> str:
    """The authenticated caller's name (``auth``); ``anonymous`` when auth is off."""
    return CALLER.get()


class AccessLog(UnaryInterceptor):
    """Apply it outermost: it then times and reports the call as the caller saw it.

    Health checks are logged at DEBUG: a probe every few seconds would drown the calls.
    The record is built and handed to the logger's handlers directly (``makeRecord``,
    ``handle``): ``Logger.log`` would also look up the calling frame, which no line shows.
    """

    def wrap(self, method: str, inner: Unary) -> Unary:
        name = method.rsplit("/", 1)[-1]
        level = logging.DEBUG if method.startswith(HEALTH) else logging.INFO
        clock = time.perf_counter

        async def logged(request: Any, context: Context) -> Any:
            started = clock()
            request_id = request_id_of(context)
            context.set_trailing_metadata(((REQUEST_ID, request_id),))
            try:
                return await inner(request, context)
            finally:
                code = context.code() or grpc.StatusCode.OK
                code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                if log.isEnabledFor(level):
                    extra = {
                        "method": name,
                        "code": code_name,
                        "duration_ms": round((clock() - started) * 1000, 3),
                        "caller": caller_of(context),
                        "request_id": request_id,
                        "peer": context.peer(),
                    }
                    log.handle(
                        log.makeRecord(
                            LOGGER,
                            level,
                            __file__,
                            0,
                            f"{name} {code_name}",
                            (),
                            None,
                            extra=extra,
                        )
                    )

        return logged
