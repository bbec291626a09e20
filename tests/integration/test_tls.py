"""TLS and mutual TLS (RATING_TLS_CERT, RATING_TLS_KEY, RATING_TLS_CLIENT_CA).

Clients that cannot complete the handshake (plaintext, no client certificate,
one from another CA) get UNAVAILABLE and reach no handler, so nothing is
written; a client with the right certificate gets its answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from auth_support import Tokens, bearer, write_tokens
from certificates import Pki
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, record

from rating_service.app import Service, start
from rating_service.config import Settings, SettingsError

pytestmark = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def tls_settings(
    database_url: str, pki: Pki, *, mutual: bool, tokens: Tokens | None = None
) -> Settings:
    return Settings(
        database_url=database_url,
        listen="127.0.0.1:0",
        tls_cert=str(pki.server.cert_path),
        tls_key=str(pki.server.key_path),
        tls_client_ca=str(pki.ca.cert_path) if mutual else None,
        auth_tokens_file=None if tokens is None else str(tokens.path),
    )


@pytest.fixture
async def tls_server(database_url: str, pki: Pki) -> AsyncIterator[Service]:
    running = await start(tls_settings(database_url, pki, mutual=False))
    yield running
    await running.stop(grace=1.0)


@pytest.fixture
async def mtls_server(
    database_url: str, pki: Pki, tmp_path: Path
) -> AsyncIterator[tuple[Service, Tokens]]:
    """Mutual TLS and tokens: an admin caller."""
    tokens = write_tokens(tmp_path / "tokens", {"operator": "admin"})
    running = await start(tls_settings(database_url, pki, mutual=True, tokens=tokens))
    yield running, tokens
    await running.stop(grace=1.0)


def secure(
    port: int, root: bytes, key: bytes | None = None, chain: bytes | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root, key, chain)
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)


async def test_a_tls_server_answers_a_client_that_trusts_its_ca(
    tls_server: Service, pki: Pki
) -> None:
    """The server's certificate (for 127.0.0.1, signed by the test CA) verifies; calls work."""
    async with secure(tls_server.port, pki.ca.cert) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        reply = await stub.RecordOutcome(record(customer, "conv-1"))
    assert reply.ledger_sequence == 1


async def test_a_plaintext_client_is_refused_by_a_tls_server_and_writes_nothing(
    tls_server: Service, pki: Pki
) -> None:
    """A client that speaks plaintext HTTP/2 to the TLS port gets UNAVAILABLE."""
    async with secure(tls_server.port, pki.ca.cert) as channel:
        stub = rating_pb2_grpc.RatingServiceStub(channel)
        customer = await customer_on_rate_card(stub)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_server.port}") as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await rating_pb2_grpc.RatingServiceStub(plaintext).RecordOutcome(
                    record(customer, "conv-1"), timeout=5
                )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await all_entries(stub, customer) == []


async def test_a_client_that_does_not_trust_the_server_s_ca_refuses_it(
    tls_server: Service, pki: Pki
) -> None:
    """Trusting only another CA, the client does not complete the handshake."""
    async with secure(tls_server.port, pki.other_ca.cert) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rating_pb2_grpc.RatingServiceStub(channel).GetBalance(
                pb.GetBalanceRequest(customer_id="acme"), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_admits_a_client_certificate_of_its_ca_only(
    mtls_server: tuple[Service, Tokens], pki: Pki
) -> None:
    """With RATING_TLS_CLIENT_CA: no client certificate, or one from another CA, is UNAVAILABLE
    and writes nothing; the CA's client certificate (with a token) gets its answers."""
    server, tokens = mtls_server
    token = bearer(tokens["operator"])
    admitted = secure(server.port, pki.ca.cert, pki.client.key, pki.client.cert)
    stranger = secure(server.port, pki.ca.cert, pki.stranger.key, pki.stranger.cert)
    anonymous = secure(server.port, pki.ca.cert)
    async with admitted, stranger, anonymous:
        good = rating_pb2_grpc.RatingServiceStub(admitted)
        request = pb.PutRateCardRequest(rate_card_id="card", currency_code="USD")
        for channel in (stranger, anonymous):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await rating_pb2_grpc.RatingServiceStub(channel).PutCustomer(
                    pb.PutCustomerRequest(customer_id="acme", rate_card_id="card"),
                    metadata=token,
                    timeout=5,
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await good.GetBalance(pb.GetBalanceRequest(customer_id="acme"), metadata=token)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await good.PutRateCard(request, metadata=token)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("variable", "problem"),
    [
        ("tls_cert", "missing"),
        ("tls_key", "missing"),
        ("tls_client_ca", "missing"),
        ("tls_key", "not pem"),
    ],
)
async def test_unusable_tls_files_stop_the_start_naming_the_variable(
    database_url: str, pki: Pki, tmp_path: Path, variable: str, problem: str
) -> None:
    """A missing or non-PEM certificate, key or CA file: the server does not start, and says
    which setting is wrong."""
    settings = tls_settings(database_url, pki, mutual=True)
    bad = tmp_path / "bad.pem"
    if problem == "not pem":
        bad.write_text("not a key")
    values = {**settings.__dict__, variable: str(bad)}

    with pytest.raises(SettingsError, match=f"RATING_{variable.upper()}: "):
        await start(Settings(**values))


async def test_the_health_listener_serves_health_alone_in_plaintext(
    database_url: str, pki: Pki
) -> None:
    """RATING_HEALTH_LISTEN answers the health service without TLS or a token, and nothing
    else: RatingService is not there (UNIMPLEMENTED)."""
    settings = tls_settings(database_url, pki, mutual=True)
    running = await start(Settings(**{**settings.__dict__, "health_listen": "127.0.0.1:0"}))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.bound.probe_port}") as probe:
            reply = await health_pb2_grpc.HealthStub(probe).Check(
                health_pb2.HealthCheckRequest(service="")
            )
            with pytest.raises(grpc.aio.AioRpcError) as absent:
                await rating_pb2_grpc.RatingServiceStub(probe).GetBalance(
                    pb.GetBalanceRequest(customer_id="acme")
                )
    finally:
        await running.stop(grace=1.0)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert absent.value.code() == grpc.StatusCode.UNIMPLEMENTED
