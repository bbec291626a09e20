"""Run the Stripe test server from the command line, for manual runs and other languages.

    python -m rating_service.testing.stripe_server --host 127.0.0.1 --port 12111

It prints one line, ``Stripe test server listening on http://HOST:PORT``,
then serves until SIGINT or SIGTERM. The clock is the real one; faults and
inspection are only available in-process (``StripeTestServer``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from ._server import StripeTestServer


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rating_service.testing.stripe_server",
        description="A Stripe-compatible test server for billing meters, meter events and credits.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=12111, help="port (0: any free port)")
    parser.add_argument(
        "--customer",
        action="append",
        default=[],
        metavar="ID",
        help="create a customer with this id at start (repeatable)",
    )
    parser.add_argument(
        "--lenient-customers",
        action="store_true",
        help="accept meter events and credit grants for unknown customers",
    )
    parser.add_argument(
        "--meter-event-latency",
        type=float,
        default=0.005,
        metavar="SECONDS",
        help="how long each meter event call is held open (default: 0.005)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="PER_SECOND",
        help="requests a second allowed before 429 (default: no limit; a sandbox allows about 25)",
    )
    return parser.parse_args(argv)


async def _serve(arguments: argparse.Namespace) -> None:
    server = StripeTestServer(
        strict_customers=not arguments.lenient_customers,
        meter_event_latency=arguments.meter_event_latency,
        rate_limit=arguments.rate_limit,
    )
    for customer_id in arguments.customer:
        server.add_customer(customer_id)
    url = await server.start(arguments.host, arguments.port)
    print(f"Stripe test server listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_arguments(argv)))


if __name__ == "__main__":
    main()
