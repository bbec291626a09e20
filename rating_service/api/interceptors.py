"""Unary handler wrappers ("interceptors"), applied once when a service is registered.

A ``grpc.aio.ServerInterceptor`` runs on every call, before the handler is
found: grpc.aio chains the interceptors with a coroutine and a
``functools.partial`` per interceptor per call, even when each one only hands
back a handler it built before. On a server bound by one core's Python that
is a measurable share of a cheap call. So the wrapping happens here instead,
once, when the servicer is added to the server: the server is built with no
interceptors, and a call costs only the wrappers themselves.

Handlers are registered from the service's descriptor, as the generated
``add_<Service>Servicer_to_server`` would, except that a method whose wrappers
parse the request themselves (``parses_requests``) gets its bytes: grpc's own
parsing fails before any wrapper runs (see ``parsing``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Unary = Callable[[Any, Context], Awaitable[Any]]


class UnaryInterceptor:
    """Subclasses say how to ``wrap`` a method's handler and which methods it ``applies_to``."""

    parses_requests = False
    """True when the handler this wraps is given the request's bytes and ``wrap`` parses them:
    the method is then registered with an identity deserializer (see ``add_servicer``)."""

    def applies_to(self, method: str) -> bool:
        return True

    def wrap(self, method: str, inner: Unary) -> Unary:
        raise NotImplementedError


_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _handler(
    servicer: object, rpc: MethodDescriptor, interceptors: Sequence[UnaryInterceptor]
) -> grpc.RpcMethodHandler[Any, Any]:
    """What the generated ``add_<Service>Servicer_to_server`` registers, unary calls wrapped."""
    behaviour = getattr(servicer, rpc.name)
    deserializer: Callable[[bytes], Any] | None = message_factory.GetMessageClass(
        rpc.input_type
    ).FromString
    if not rpc.client_streaming:
        # A server-streaming handler is a coroutine too (it writes with ``context.write``),
        # so the unary wrappers apply to it unchanged.
        method = f"/{rpc.containing_service.full_name}/{rpc.name}"
        applied = [i for i in interceptors if i.applies_to(method)]
        # The first interceptor is the outermost, as in grpc.aio.server(interceptors=...).
        for interceptor in reversed(applied):
            behaviour = interceptor.wrap(method, behaviour)
        if any(i.parses_requests for i in applied):
            deserializer = None  # grpc hands over the bytes
    return _KINDS[rpc.client_streaming, rpc.server_streaming](
        behaviour,
        request_deserializer=deserializer,
        response_serializer=message_factory.GetMessageClass(rpc.output_type).SerializeToString,
    )


def add_servicer(
    servicer: object,
    service: ServiceDescriptor,
    server: grpc.aio.Server,
    interceptors: Sequence[UnaryInterceptor],
) -> None:
    """Register ``servicer``'s methods of ``service``, every one with a single request wrapped."""
    handlers = {rpc.name: _handler(servicer, rpc, interceptors) for rpc in service.methods}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)
