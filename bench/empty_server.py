"""The ceiling yardstick's server: a bare grpc.aio server whose only service is health.

One Python process serving gRPC can answer no more calls per second than it
answers calls that do nothing; the service's figures are quoted as a ratio to
this one, measured on the same machine, in the same run, by the same client
code. It is the same server construction as the service's (grpc.aio, the same
async health servicer, one process, port sharing off) minus everything the
service adds: interceptors, the servicer, the ledger.

Run as ``python -m bench.empty_server --listen 127.0.0.1:PORT``; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer


async def serve(listen: str) -> None:
    server = grpc.aio.server(maximum_concurrent_rpcs=2000, options=[("grpc.so_reuseport", 0)])
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if server.add_insecure_port(listen) == 0:
        raise SystemExit(f"empty_server: cannot listen on {listen}")
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.empty_server")
    parser.add_argument("--listen", required=True, help="host:port")
    asyncio.run(serve(parser.parse_args().listen))


if __name__ == "__main__":
    main()
