"""Unary handler wrappers ("interceptors"), applied once when a service is registered.

A ``grpc.aio.ServerInterceptor`` runs on every call, before the handler is
found: grpc.aio chains the interceptors with a coroutine and a
``functools.partial`` per interceptor per call, even when each one only hands
back a handler it built before. On a server bound by one core's Python that
is a measurable share of a cheap call. So the wrapping happens here instead,
once, when the servicer is added to the server: the server is built with no
interceptors, and a call costs only the wrappers themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc
from google.protobuf.descriptor import ServiceDescriptor

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Unary = Callable[[Any, Context], Awaitable[Any]]
AddServicer = Callable[[Any, grpc.aio.Server], None]
"""A generated ``add_<Service>Servicer_to_server`` function."""


class UnaryInterceptor:
    """Subclasses say how to ``wrap`` a method's handler and which methods it ``applies_to``."""

    def applies_to(self, method: str) -> bool:
        return True

    def wrap(self, method: str, inner: Unary) -> Unary:
        raise NotImplementedError


class _Wrapped:
    """Stands in for a servicer: its unary-unary methods wrapped, the others as they were."""

    def __init__(
        self,
        servicer: object,
        service: ServiceDescriptor,
        interceptors: Sequence[UnaryInterceptor],
    ) -> None:
        for rpc in service.methods:
            handler = getattr(servicer, rpc.name)
            if not rpc.client_streaming and not rpc.server_streaming:
                method = f"/{service.full_name}/{rpc.name}"
                # The first interceptor is the outermost, as in grpc.aio.server(interceptors=...).
                for interceptor in reversed(interceptors):
                    if interceptor.applies_to(method):
                        handler = interceptor.wrap(method, handler)
            setattr(self, rpc.name, handler)


def add_servicer(
    add: AddServicer,
    servicer: object,
    service: ServiceDescriptor,
    server: grpc.aio.Server,
    interceptors: Sequence[UnaryInterceptor],
) -> None:
    """``add(servicer, server)`` with every unary-unary method of ``service`` wrapped."""
    add(_Wrapped(servicer, service, interceptors), server)
