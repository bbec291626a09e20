"""Stalled calls cannot starve the server: 2,000 half-open HTTP/2 streams (headers sent, the
message never) held open from one or from twenty connections, and meanwhile the health
service answers SERVING and a fresh GetBalance succeeds.

The streams are opened with raw HTTP/2 (the ``h2`` package over a plain socket): a gRPC
client always sends its message. The server runs with RATING_MAX_CONCURRENT_RPCS=1000,
the least api.md allows, so held streams that counted against that limit would fill it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from service_process import Launcher
from support import customer_on_rate_card

from rating_service.api.server import MAX_STREAMS_PER_CONNECTION

HALF_OPEN = 2000
GET_BALANCE = "/rating.v1.RatingService/GetBalance"
PATIENCE = 30.0
"""Seconds a probe may take before the test gives up (a failsafe, not a measurement)."""


class HalfOpenConnection:
    """One HTTP/2 connection whose streams send headers and never a message.

    It keeps the connection itself healthy (acknowledges the server's SETTINGS, answers
    its PINGs) and counts the streams the server still holds: opened, neither reset nor
    answered.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self._opened: set[int] = set()
        self._closed: set[int] = set()
        self._pong = asyncio.Event()
        self._pump = asyncio.create_task(self._read())

    @classmethod
    async def to(cls, address: str) -> HalfOpenConnection:
        host, port = address.rsplit(":", 1)
        connection = cls(*await asyncio.open_connection(host, int(port)))
        connection._h2.initiate_connection()
        await connection._flush()
        return connection

    @property
    def held(self) -> int:
        return len(self._opened - self._closed)

    async def open_streams(self, count: int) -> None:
        """``count`` GetBalance calls: their headers, all at once, without END_STREAM."""
        for _ in range(count):
            stream = self._h2.get_next_available_stream_id()
            self._h2.send_headers(
                stream,
                [
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", GET_BALANCE),
                    (":authority", "rating"),
                    ("content-type", "application/grpc"),
                    ("te", "trailers"),
                ],
            )
            self._opened.add(stream)
        await self._flush()

    async def settled(self) -> None:
        """Return once the server has read everything sent so far: it answers a PING in order."""
        self._pong.clear()
        self._h2.ping(b"settled!")
        await self._flush()
        await asyncio.wait_for(self._pong.wait(), PATIENCE)

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def _flush(self) -> None:
        self._writer.write(self._h2.data_to_send())
        await self._writer.drain()

    async def _read(self) -> None:
        while data := await self._reader.read(65536):
            for event in self._h2.receive_data(data):
                if isinstance(event, h2.events.StreamReset | h2.events.ResponseReceived):
                    self._closed.add(event.stream_id)
                elif isinstance(event, h2.events.PingAckReceived):
                    self._pong.set()
            await self._flush()  # SETTINGS acknowledgements, PING answers


@pytest.fixture
async def holders() -> AsyncIterator[list[HalfOpenConnection]]:
    """Opened by the test; closed at teardown (which ends their streams)."""
    opened: list[HalfOpenConnection] = []
    yield opened
    for connection in opened:
        await connection.close()


@pytest.mark.parametrize("connections", [1, 20])
async def test_half_open_streams_starve_neither_the_health_service_nor_a_fresh_call(
    launch: Launcher, holders: list[HalfOpenConnection], connections: int
) -> None:
    """Health answers SERVING and a new channel's GetBalance succeeds while they are held."""
    server = launch(env={"RATING_MAX_CONCURRENT_RPCS": "1000"})
    async with grpc.aio.insecure_channel(server.address) as channel:
        customer = await customer_on_rate_card(rating_pb2_grpc.RatingServiceStub(channel))

    for _ in range(connections):
        holders.append(await HalfOpenConnection.to(server.address))
    for holder in holders:
        await holder.open_streams(HALF_OPEN // connections)
    await asyncio.gather(*(holder.settled() for holder in holders))
    held = sum(holder.held for holder in holders)

    async with grpc.aio.insecure_channel(server.address) as fresh:
        health = await health_pb2_grpc.HealthStub(fresh).Check(
            health_pb2.HealthCheckRequest(), timeout=PATIENCE
        )
        balance = await rating_pb2_grpc.RatingServiceStub(fresh).GetBalance(
            pb.GetBalanceRequest(customer_id=customer), timeout=PATIENCE
        )

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert balance.ledger_sequence == 0
    # Each connection held (nearly) as many streams as the server lets one hold, and none was
    # let go meanwhile: the premise, not a timing. When 2,000 streams arrive at once, grpc
    # itself answers a few of them CANCELLED at once (up to 62 of 2,000 seen on CI machines),
    # so one in ten may be missing; more than 1,000 held still fills the RPC limit.
    expected = min(HALF_OPEN, connections * MAX_STREAMS_PER_CONNECTION)
    assert expected - expected // 10 <= held <= expected
    await asyncio.gather(*(holder.settled() for holder in holders))
    assert sum(holder.held for holder in holders) >= held
