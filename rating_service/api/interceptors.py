"""Server interceptors that wrap unary handlers: built once per method, not once per call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Unary = Callable[[Any, Context], Awaitable[Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Subclasses say how to ``wrap`` a method's handler and which methods it ``applies_to``."""

    def __init__(self) -> None:
        self._wrapped: dict[str, MethodHandler] = {}

    def applies_to(self, method: str) -> bool:
        return True

    def wrap(self, method: str, inner: Unary) -> Unary:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        method = handler_call_details.method
        if (known := self._wrapped.get(method)) is not None:
            return known
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: not cached, callers choose these names
        wrapped = handler
        if handler.unary_unary is not None and self.applies_to(method):
            wrapped = grpc.unary_unary_rpc_method_handler(
                # The stubs type unary handlers as sync; under grpc.aio they are coroutines.
                self.wrap(method, handler.unary_unary),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        self._wrapped[method] = wrapped
        return wrapped
