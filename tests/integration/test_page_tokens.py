"""ListLedgerEntries' page tokens, through the real server on both engines: opaque, bound to
the customer and the listing, refused when tampered with, given for another customer or
carrying anything more; valid on every server sharing the database, across restarts.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import grpc
import pytest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from serving import serving
from support import customer_on_rate_card, fresh_postgres_database, record, violated_fields

from rating_service.config import Settings

Stub = rating_pb2_grpc.RatingServiceStub


@contextlib.asynccontextmanager
async def server_on(database_url: str) -> AsyncIterator[Stub]:
    """A server on ``database_url`` (migrating it), stopped on exit."""
    async with serving(Settings(database_url=database_url, listen="127.0.0.1:0")) as (_, channel):
        yield rating_pb2_grpc.RatingServiceStub(channel)


async def customer_with_entries(stub: Stub, customer: str, outcomes: int = 3) -> str:
    await customer_on_rate_card(stub, customer)
    for i in range(outcomes):
        await stub.RecordOutcome(record(customer, f"conv-{i}"))
    return customer


async def page(stub: Stub, customer: str, token: str = "") -> pb.ListLedgerEntriesResponse:
    response: pb.ListLedgerEntriesResponse = await stub.ListLedgerEntries(
        pb.ListLedgerEntriesRequest(customer_id=customer, page_size=1, page_token=token)
    )
    return response


async def refused_token(stub: Stub, customer: str, token: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await page(stub, customer, token)
    return raised.value


def assert_page_token_refused(error: grpc.aio.AioRpcError) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["page_token"]


def _rebuilt(token: str, change: Callable[[bytearray], None]) -> str:
    data = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    change(data)
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()


def _set(index: int, value: Callable[[int], int]) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[index] = value(data[index])

    return change


TAMPERED: dict[str, Callable[[str], str]] = {
    "sequence-moved-on": lambda t: _rebuilt(t, _set(8, lambda b: b + 1)),
    "sequence-moved-back": lambda t: _rebuilt(t, _set(8, lambda b: b - 1)),
    "another-version": lambda t: _rebuilt(t, _set(0, lambda b: b + 1)),
    "tag-changed": lambda t: _rebuilt(t, _set(-1, lambda b: b ^ 1)),
    "last-character-changed": lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    "truncated": lambda t: t[:-1],
    "trailing-character": lambda t: t + "A",
    "trailing-padding": lambda t: t + "=",
    "trailing-newline": lambda t: t + "\n",
    "leading-space": lambda t: " " + t,
    "standard-base64": lambda t: base64.b64encode(
        base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    ).decode(),
    "an-earlier-kind-of-token": lambda t: base64.urlsafe_b64encode(b"after:1").decode(),
}


@pytest.fixture
async def acme(stub: Stub) -> str:
    return await customer_with_entries(stub, "acme")


async def test_a_token_walks_its_own_customers_ledger(stub: Stub, acme: str) -> None:
    """Page after page, each token continues where the previous page ended."""
    first = await page(stub, acme)
    second = await page(stub, acme, first.next_page_token)

    assert [e.sequence for e in first.entries] == [1]
    assert [e.sequence for e in second.entries] == [2]


async def test_a_token_given_for_another_customer_is_refused(stub: Stub, acme: str) -> None:
    """globex has a ledger as long as acme's: acme's token still reads none of it."""
    globex = await customer_with_entries(stub, "globex")
    token = (await page(stub, acme)).next_page_token

    assert_page_token_refused(await refused_token(stub, globex, token))


@pytest.mark.parametrize("tamper", list(TAMPERED.values()), ids=list(TAMPERED))
async def test_a_tampered_token_or_one_with_trailing_junk_is_refused(
    stub: Stub, acme: str, tamper: Callable[[str], str]
) -> None:
    token = (await page(stub, acme)).next_page_token
    changed = tamper(token)
    assert changed != token

    assert_page_token_refused(await refused_token(stub, acme, changed))


@pytest.fixture
def other_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A second, empty database on the same engine."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('other') / 'rating.db'}"
        return
    with fresh_postgres_database(database_url.rsplit("/", 1)[0] + "/postgres") as url:
        yield url


async def test_a_token_stays_valid_on_every_server_of_the_database_and_across_restarts(
    database_url: str,
) -> None:
    """Issued by one server, it reads the same page on a second one running beside it and on
    a third started after both stopped: all read the key the database holds."""
    async with server_on(database_url) as first:
        acme = await customer_with_entries(first, "acme")
        token = (await page(first, acme)).next_page_token
        expected = await page(first, acme, token)
        async with server_on(database_url) as beside:
            assert await page(beside, acme, token) == expected
    async with server_on(database_url) as restarted:
        assert await page(restarted, acme, token) == expected


async def test_each_database_draws_its_own_key(database_url: str, other_database_url: str) -> None:
    """The same customer and ledger on another database: the token is refused there."""
    async with server_on(database_url) as one:
        token = (await page(one, await customer_with_entries(one, "acme"))).next_page_token
    async with server_on(other_database_url) as other:
        acme = await customer_with_entries(other, "acme")
        assert_page_token_refused(await refused_token(other, acme, token))
