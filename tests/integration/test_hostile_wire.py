"""Hostile input on the wire, through the real server: what a caller sends never costs more
than a bounded, well-formed refusal.

- bytes that do not parse (bad UTF-8 in a string, a truncated message) are
  INVALID_ARGUMENT / INVALID_FIELD on every RPC, never UNKNOWN, and cost at most one
  short log line however many arrive;
- an error echoes at most 256 bytes of the request, in each string of its status, and
  its trailer always fits what a default client accepts, so the caller gets the reason;
- RATING_MAX_MESSAGE_BYTES (default 8 MiB) bounds a request: past it, RESOURCE_EXHAUSTED;
- load shedding counts the calls that reached a handler, and leaves the health service
  out (half-open streams: tests/e2e/test_half_open_streams.py);
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from serving import serving
from support import ECHO_BYTES, customer_on_rate_card, record, status_of, strings_of, unpacked, usd

from rating_service.config import Settings, SettingsError

Stub = rating_pb2_grpc.RatingServiceStub
SERVICE = pb.DESCRIPTOR.services_by_name["RatingService"]
MIB = 1024 * 1024


@pytest.fixture
def engine() -> str:
    """The wire is the same whatever stores the ledger: one engine is enough here."""
    return "sqlite"


def assert_bounded_refusal(status: status_pb2.Status, field: str) -> None:
    """INVALID_ARGUMENT / INVALID_FIELD naming ``field``, every string at most 256 bytes."""
    info, violations = unpacked(status)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert (info.reason, info.domain) == ("INVALID_FIELD", "rating.v1")
    assert field in [f for f, _ in violations]
    assert max(len(s.encode()) for s in strings_of(status)) <= ECHO_BYTES


def flooded(customer: str, outcome_id: str = "conv-1") -> pb.RecordOutcomeRequest:
    """An outcome with 20,000 attributes whose keys are too long: one violation each (~6 MiB)."""
    request = record(customer, outcome_id)
    request.attributes.update({f"{i:05d}" + "k" * 300: "v" for i in range(20_000)})
    return request


# ---- an error echoes at most 256 bytes ------------------------------------------------


@pytest.mark.parametrize("letter", ["X", "é", "𝄞"], ids=["ascii", "2-byte", "4-byte"])
async def test_a_1_mib_currency_code_is_refused_with_at_most_256_bytes_of_it(
    stub: Stub, letter: str
) -> None:
    """The rate card's currency echoed by each price's check is cut (on a character), not sent whole."""
    currency = letter * (MIB // len(letter.encode()))
    request = pb.PutRateCardRequest(
        rate_card_id="card",
        currency_code=currency,
        prices=[pb.Price(outcome_type="resolution", unit_price=usd("0.99"))],
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PutRateCard(request)

    status = status_of(raised.value)
    assert_bounded_refusal(status, "currency_code")
    assert letter * (ECHO_BYTES // len(letter.encode()) + 1) not in "".join(strings_of(status))


async def test_thousands_of_violations_still_reach_the_caller_with_the_reason(stub: Stub) -> None:
    """20,000 bad attributes: the BadRequest lists the first ones, the trailer stays small."""
    customer = await customer_on_rate_card(stub)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RecordOutcome(flooded(customer))

    status = status_of(raised.value)
    assert_bounded_refusal(status, "attributes")
    assert status.ByteSize() <= 4096


async def test_a_batch_item_with_thousands_of_violations_gets_a_bounded_status(
    stub: Stub,
) -> None:
    """RecordOutcomes: the item's own status is bounded the same way; its neighbour is recorded."""
    customer = await customer_on_rate_card(stub)
    bad, good = flooded(customer, "conv-1"), record(customer, "conv-2")

    response = await stub.RecordOutcomes(pb.RecordOutcomesRequest(requests=[bad, good]))

    assert [r.WhichOneof("result") for r in response.results] == ["error", "response"]
    assert_bounded_refusal(response.results[0].error, "requests[0].attributes")
    assert response.results[0].error.ByteSize() <= 4096


# ---- bytes that do not parse ----------------------------------------------------------

UNPARSABLE = {
    # Field 1 (a string in every request but RecordOutcomes, where it is a message):
    # 3 bytes that are a UTF-16 surrogate in UTF-8's form, which UTF-8 forbids.
    "bad-utf8": bytes.fromhex("0a03eda080"),
    # Field 1 announces 5 bytes; 3 follow.
    "truncated": bytes.fromhex("0a05616263"),
    # A RecordOutcomes item whose customer_id is not UTF-8: the whole request fails.
    "nested-bad-utf8": bytes.fromhex("0a050a03eda080"),
}


async def raw_call(channel: grpc.aio.Channel, rpc: str, data: bytes) -> grpc.aio.AioRpcError:
    """Send ``data`` as the request of ``rpc`` as it is; the error the call fails with."""
    call = channel.unary_unary(f"/{SERVICE.full_name}/{rpc}")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(data)
    return raised.value


@pytest.mark.parametrize("rpc", [m.name for m in SERVICE.methods])
@pytest.mark.parametrize("data", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
async def test_bytes_that_do_not_parse_are_an_invalid_argument_on_every_rpc(
    channel: grpc.aio.Channel, rpc: str, data: bytes
) -> None:
    """INVALID_ARGUMENT / INVALID_FIELD (rating.v1), naming the request, never UNKNOWN."""
    error = await raw_call(channel, rpc, data)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations = unpacked(status_of(error))
    assert (info.reason, info.domain) == ("INVALID_FIELD", "rating.v1")
    assert [field for field, _ in violations] == [""]


async def test_a_flood_of_unparsable_requests_costs_one_short_log_line(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """100 bad requests: one warning of one line, no traceback; later calls still work."""
    with caplog.at_level(logging.INFO):
        for i in range(100):
            await raw_call(channel, "GetBalance", UNPARSABLE["bad-utf8" if i % 2 else "truncated"])

    noted = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noted) == 1
    assert noted[0].exc_info is None
    assert "\n" not in noted[0].getMessage()
    assert len(noted[0].getMessage()) <= 400
    error = await raw_call(channel, "GetBalance", pb.GetBalanceRequest().SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # parsed: customer_id is required


# ---- the largest request -------------------------------------------------------------


def get_balance_of_size(size: int) -> bytes:
    """A GetBalanceRequest of exactly ``size`` bytes: its customer_id is ``size - 5`` bytes."""
    length = size - 5
    varint = bytes(
        [(length >> shift & 0x7F) | (0x80 if shift < 21 else 0) for shift in (0, 7, 14, 21)]
    )
    assert length >> 28 == 0
    return b"\x0a" + varint + b"x" * length


@pytest.mark.parametrize(
    ("size", "code"),
    [
        (8 * MIB, grpc.StatusCode.INVALID_ARGUMENT),  # read, and refused for its customer_id
        (8 * MIB + 1, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
    ids=["8-MiB", "8-MiB-and-1-byte"],
)
async def test_by_default_a_request_may_take_8_mib(
    channel: grpc.aio.Channel, size: int, code: grpc.StatusCode
) -> None:
    error = await raw_call(channel, "GetBalance", get_balance_of_size(size))

    assert error.code() == code


async def test_rating_max_message_bytes_sets_the_largest_request(tmp_path: Path) -> None:
    """RATING_MAX_MESSAGE_BYTES=65536: a request of 64 KiB is read, one byte more is not."""
    settings = Settings.from_env(
        {
            "RATING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}",
            "RATING_LISTEN": "127.0.0.1:0",
            "RATING_MAX_MESSAGE_BYTES": "65536",
        }
    )
    async with serving(settings) as (_, channel):
        at_limit = await raw_call(channel, "GetBalance", get_balance_of_size(65536))
        past_it = await raw_call(channel, "GetBalance", get_balance_of_size(65537))

    assert at_limit.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert past_it.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("value", ["1023", "8MiB", "-1"])
def test_a_max_message_bytes_the_server_cannot_use_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match="RATING_MAX_MESSAGE_BYTES"):
        Settings.from_env({"RATING_MAX_MESSAGE_BYTES": value})


# ---- load shedding --------------------------------------------------------------------


async def test_a_burst_of_1000_calls_on_one_new_channel_is_accepted(stub: Stub) -> None:
    """api.md: bursts of at least 1,000 concurrent calls are accepted. The streams one
    connection may hold are bounded: the client queues the rest, the server refuses none."""
    customer = await customer_on_rate_card(stub)

    answers = await asyncio.gather(
        *(stub.GetBalance(pb.GetBalanceRequest(customer_id=customer)) for _ in range(1000)),
        return_exceptions=True,
    )

    assert [a for a in answers if isinstance(a, Exception)] == []


async def test_past_the_limit_a_call_is_shed_with_overloaded_and_health_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One GetBalance held inside its handler fills the limit: the next is RESOURCE_EXHAUSTED /
    OVERLOADED, the health service (outside the limit) answers SERVING; once it ends, calls pass."""
    entered, release = asyncio.Event(), asyncio.Event()
    one_call = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}",
        listen="127.0.0.1:0",
        max_concurrent_rpcs=1,
    )

    async with serving(one_call) as (service, channel):
        get_balance = service.store.get_balance

        async def held_get_balance(*args: Any) -> Any:
            entered.set()
            await release.wait()
            return await get_balance(*args)

        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        monkeypatch.setattr(service.store, "get_balance", held_get_balance)
        first = asyncio.ensure_future(stub.GetBalance(pb.GetBalanceRequest(customer_id=customer)))
        await entered.wait()

        with pytest.raises(grpc.aio.AioRpcError) as raised:  # the timeout is only a failsafe
            await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer), timeout=30)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        release.set()
        await first
        after = await stub.GetBalance(pb.GetBalanceRequest(customer_id=customer))

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info, _ = unpacked(status_of(raised.value))
    assert (info.reason, info.domain) == ("OVERLOADED", "rating.v1")
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert after.ledger_sequence == 0
