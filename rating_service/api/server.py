"""The gRPC server: RatingService, the standard health service and server reflection."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from rating_client.v1 import rating_pb2

from rating_service.api.access_log import AccessLog
from rating_service.api.admission import Admission
from rating_service.api.errors import ErrorInterceptor
from rating_service.api.interceptors import UnaryInterceptor, add_servicer
from rating_service.api.metrics import MetricsInterceptor
from rating_service.api.parsing import RequestParser
from rating_service.api.servicer import RatingServicer
from rating_service.api.tracing import TracingInterceptor
from rating_service.service.clock import Clock, system_clock
from rating_service.service.store import LedgerStore
from rating_service.tracing import TRACER

RATING_SERVICE = rating_pb2.DESCRIPTOR.services_by_name["RatingService"]
SERVICE_NAME = RATING_SERVICE.full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""The largest response the server sends (a page of 1,000 ledger entries takes well under 1 MiB)."""
MAX_STREAMS_PER_CONNECTION = 100
"""HTTP/2 streams one connection may hold open at once (grpc.max_concurrent_streams): what a
client that opens streams and never finishes them can hold. HTTP/2 advises at least 100; a
client with more calls on one channel queues them until a stream frees."""


class ListenError(RuntimeError):
    """The server could not bind its address (most often: another process has it)."""


@dataclass(frozen=True)
class BoundServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    admission: Admission


async def create_server(
    store: LedgerStore,
    listen: str,
    *,
    max_concurrent_rpcs: int,
    max_message_bytes: int,
    page_token_key: bytes,
    reuse_port: bool = False,
    clock: Clock = system_clock,
) -> BoundServer:
    """Build and bind (not start) the server; port 0 in ``listen`` picks a free port.

    ``max_concurrent_rpcs`` bounds the RatingService calls running at once (see ``admission``);
    ``max_message_bytes`` the requests: grpc refuses a larger one as RESOURCE_EXHAUSTED from its
    length prefix, before reading it. ``page_token_key`` signs page tokens (``page_tokens``).
    """
    admission = Admission(f"/{SERVICE_NAME}/", max_concurrent_rpcs)
    # Applied when each service is added, not as grpc.aio interceptors (see interceptors.py).
    # The first is the outermost. RatingService's handlers raise, and ErrorInterceptor answers
    # their errors (and RequestParser's, innermost), so drain and metrics see the final code.
    tracing: tuple[UnaryInterceptor, ...] = (TracingInterceptor(),) if TRACER else ()
    interceptors = (AccessLog(), *tracing, MetricsInterceptor(), admission)
    server = grpc.aio.server(
        options=[
            ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            ("grpc.http.overload_protection", 0),
            # gRPC shares ports by default: a second server would start silently.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
        ],
    )
    add_servicer(
        RatingServicer(store, page_token_key, clock),
        RATING_SERVICE,
        server,
        (*interceptors, ErrorInterceptor(), RequestParser(RATING_SERVICE)),
    )
    health = HealthServicer()
    add_servicer(health, HEALTH_SERVICE, server, interceptors)
    reflection.enable_server_reflection(
        (SERVICE_NAME, HEALTH_SERVICE.full_name, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as error:
        raise ListenError(f"cannot listen on {listen}: {error}") from None
    if port == 0:
        raise ListenError(f"cannot listen on {listen}: the address is in use or invalid")
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    return BoundServer(server, port, health, admission)
