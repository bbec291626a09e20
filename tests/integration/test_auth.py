"""Authentication and authorization: a token per caller, a scope per RPC (api.md, Additions).

A call without a known token is UNAUTHENTICATED; a known caller without the RPC's
scope is PERMISSION_DENIED naming ``required_scope``; either way nothing is
written. Health and reflection stay open. The token never reaches a log line,
a metric or an error; the caller's name does.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from auth_support import SCOPED_CALLERS, SendToken, Tokens, bearer, error_info, write_tokens
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY, generate_latest
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import all_entries, customer_on_rate_card, record

from rating_service.api.auth import SCOPES
from rating_service.api.server import RATING_SERVICE, SERVICE_NAME
from rating_service.app import Service, start
from rating_service.config import Settings, SettingsError

if TYPE_CHECKING:
    from conftest import MovableClock

REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return write_tokens(tmp_path / "tokens")


@pytest.fixture
async def secured(database_url: str, tokens: Tokens, clock: MovableClock) -> AsyncIterator[Service]:
    """The service with auth on: the tokens file has a caller per scope."""
    settings = Settings(
        database_url=database_url,
        listen="127.0.0.1:0",
        sweep_interval=0.05,
        auth_tokens_file=str(tokens.path),
    )
    running = await start(settings, clock)
    yield running
    await running.stop(grace=1.0)


@pytest.fixture
async def raw(secured: Service) -> AsyncIterator[grpc.aio.Channel]:
    """A channel that sends no token of its own."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{secured.port}") as channel:
        yield channel


@pytest.fixture
async def admin(
    secured: Service, tokens: Tokens
) -> AsyncIterator[rating_pb2_grpc.RatingServiceStub]:
    """A stub whose every call carries the admin caller's token."""
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{secured.port}", interceptors=[SendToken(tokens["operator"])]
    ) as channel:
        yield rating_pb2_grpc.RatingServiceStub(channel)


async def _call_raw(
    channel: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    """Calls ``method`` with an empty request; the final status code (OK when it answered).

    A refusal must carry its reason, and PERMISSION_DENIED the method's ``required_scope``.
    """
    failure = await _failure(channel, method, metadata)
    if failure is None:
        return grpc.StatusCode.OK
    if failure.code() in REFUSALS:
        info = error_info(failure)
        assert info.domain == "rating.v1"
        assert info.reason == failure.code().name, (method, info)
        if failure.code() == grpc.StatusCode.PERMISSION_DENIED:
            assert info.metadata["required_scope"] == SCOPES[method], (method, info)
    code: grpc.StatusCode = failure.code()
    return code


async def _failure(
    channel: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.AioRpcError | None:
    """How a call of ``method`` with an empty request failed; None when it answered."""
    path = f"/{SERVICE_NAME}/{method}"

    def identity(data: bytes) -> bytes:
        return data

    try:
        if RATING_SERVICE.methods_by_name[method].server_streaming:
            stream = channel.unary_stream(
                path, request_serializer=identity, response_deserializer=identity
            )
            async for _ in stream(b"", metadata=metadata, timeout=0.5):
                pass
        else:
            unary = channel.unary_unary(
                path, request_serializer=identity, response_deserializer=identity
            )
            await unary(b"", metadata=metadata)
    except grpc.aio.AioRpcError as error:
        return error
    return None


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_every_rpc_has_a_scope_and_admits_only_callers_holding_it(
    raw: grpc.aio.Channel, tokens: Tokens
) -> None:
    """For every method of RatingService's descriptor (new RPCs included, once they exist): it
    has a scope; no token and an unknown token are UNAUTHENTICATED; each scope's caller passes
    only the RPCs of its scope (admin: all) and is otherwise PERMISSION_DENIED with
    ``required_scope``."""
    assert RATING_SERVICE.methods, "the service has no methods"
    wrong = secrets.token_urlsafe(24)
    for rpc in RATING_SERVICE.methods:
        assert rpc.name in SCOPES, f"{rpc.name} has no scope in rating_service.api.auth.SCOPES"
        required = SCOPES[rpc.name]
        assert await _call_raw(raw, rpc.name, ()) == grpc.StatusCode.UNAUTHENTICATED, rpc.name
        assert await _call_raw(raw, rpc.name, bearer(wrong)) == grpc.StatusCode.UNAUTHENTICATED
        for caller, scope in SCOPED_CALLERS.items():
            code = await _call_raw(raw, rpc.name, bearer(tokens[caller]))
            if scope in (required, "admin"):
                assert code not in REFUSALS, (rpc.name, caller, code)
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, (rpc.name, caller, code)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "token-without-scheme"],
)
async def test_a_malformed_authorization_header_is_unauthenticated(
    raw: grpc.aio.Channel, authorization: str
) -> None:
    """Only ``Bearer <token>`` is read; anything else counts as no token."""
    code = await _call_raw(raw, "GetBalance", (("authorization", authorization),))

    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_refused_calls_write_nothing(
    raw: grpc.aio.Channel, admin: rating_pb2_grpc.RatingServiceStub, tokens: Tokens
) -> None:
    """Valid writes sent without a token, with an unknown one or without the scope change
    nothing; the very same requests with the scope then succeed."""
    customer = await customer_on_rate_card(admin)
    await admin.CreateBucket(
        pb.CreateBucketRequest(
            customer_id=customer, bucket_id="b-1", outcome_type="resolution", quantity=5
        )
    )
    before = await all_entries(admin, customer)
    stub = rating_pb2_grpc.RatingServiceStub(raw)
    writes = [
        (stub.RecordOutcome, record(customer, "conv-1"), "recorder"),
        (
            stub.RecordOutcomes,
            pb.RecordOutcomesRequest(requests=[record(customer, "conv-2")]),
            "recorder",
        ),
        (
            stub.ConsumeBucket,
            pb.ConsumeBucketRequest(
                customer_id=customer, request_id="r-1", outcome_type="resolution", quantity=1
            ),
            "consumer",
        ),
        (
            stub.CreateBucket,
            pb.CreateBucketRequest(
                customer_id=customer, bucket_id="b-2", outcome_type="resolution", quantity=5
            ),
            "operator",
        ),
        (
            stub.PutCustomer,
            pb.PutCustomerRequest(customer_id="other", rate_card_id=f"card-{customer}"),
            "operator",
        ),
    ]
    for method, request, _ in writes:
        for metadata in ((), bearer(secrets.token_urlsafe(24)), bearer(tokens["reader"])):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await method(request, metadata=metadata)
            assert refused.value.code() in REFUSALS

    assert await all_entries(admin, customer) == before
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await admin.GetBalance(pb.GetBalanceRequest(customer_id="other"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    for method, request, caller in writes:
        await method(request, metadata=bearer(tokens[caller]))
    assert len(await all_entries(admin, customer)) == len(before) + 4


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_health_and_reflection_need_no_token(raw: grpc.aio.Channel) -> None:
    """A probe or grpcurl without a token still gets health and the service list."""
    health = health_pb2_grpc.HealthStub(raw)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(raw)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = [s.name async for r in responses for s in r.list_services_response.service]
    assert SERVICE_NAME in names


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_the_caller_name_labels_metrics_and_logs_and_the_token_appears_nowhere(
    raw: grpc.aio.Channel, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls count under their caller's name; refusals are logged naming the caller and keep the
    request id; no token is in a metric, a log line or an error message."""

    def calls(code: str, caller: str) -> float:
        labels = {"method": "GetBalance", "code": code, "caller": caller}
        return REGISTRY.get_sample_value("rating_rpcs_total", labels) or 0.0

    stub = rating_pb2_grpc.RatingServiceStub(raw)
    found_before = calls("NOT_FOUND", "reader")
    denied_before = calls("PERMISSION_DENIED", "recorder")
    anonymous_before = calls("UNAUTHENTICATED", "unauthenticated")
    request = pb.GetBalanceRequest(customer_id="nobody")
    messages = []
    caplog.set_level(logging.INFO)
    for metadata in (bearer(tokens["reader"]), bearer(tokens["recorder"]), bearer("guess")):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.GetBalance(request, metadata=metadata)
        messages.append(f"{failed.value.details()} {failed.value.trailing_metadata()}")
        assert "x-request-id" in dict(failed.value.trailing_metadata() or ())

    assert calls("NOT_FOUND", "reader") == found_before + 1
    assert calls("PERMISSION_DENIED", "recorder") == denied_before + 1
    assert calls("UNAUTHENTICATED", "unauthenticated") == anonymous_before + 1
    assert "caller recorder" in caplog.text
    access = [r for r in caplog.records if r.name == "rating_service.access"]
    assert {getattr(r, "caller", None) for r in access} >= {"reader", "recorder", "unauthenticated"}
    everything = generate_latest(REGISTRY).decode() + caplog.text + "".join(messages)
    for token in [*tokens.by_caller.values(), "guess"]:
        assert token not in everything


async def test_without_a_tokens_file_the_server_serves_loopback_only_and_warns(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Unauthenticated on 127.0.0.1 with a warning; on every interface it refuses to start,
    unless RATING_AUTH=off says so."""
    caplog.set_level(logging.WARNING)
    loopback = await start(Settings(database_url=database_url, listen="127.0.0.1:0"))
    await loopback.stop(grace=1.0)
    assert "auth is off" in caplog.text

    with pytest.raises(SettingsError, match="RATING_AUTH_TOKENS_FILE"):
        await start(Settings(database_url=database_url, listen="0.0.0.0:0"))

    explicit = await start(Settings(database_url=database_url, listen="0.0.0.0:0", auth_off=True))
    await explicit.stop(grace=1.0)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("reader read", "found 2 fields"),
        ("reader 1234 read", "64 hex digits"),
        (f"reader {'ab' * 32} read,write", "unknown scope 'write'"),
        (f"reader/1 {'ab' * 32} read", "caller name"),
    ],
)
async def test_a_bad_tokens_file_line_stops_the_start_naming_it(
    tmp_path: Path, line: str, complaint: str
) -> None:
    """The server does not start on a tokens file it cannot read whole; the error names the
    line."""
    path = tmp_path / "tokens"
    path.write_text(f"# callers\n\n{line}\n")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rating.db'}",
        listen="127.0.0.1:0",
        auth_tokens_file=str(path),
    )

    with pytest.raises(SettingsError, match=rf"line 3: .*{complaint}"):
        await start(settings)
    assert not (tmp_path / "rating.db").exists()


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"RATING_AUTH": "off", "RATING_AUTH_TOKENS_FILE": "/x"}, "contradicts"),
        ({"RATING_AUTH": "maybe"}, "must be 'on' or 'off'"),
        ({"RATING_TLS_CERT": "/x"}, "go together"),
        ({"RATING_TLS_CLIENT_CA": "/x"}, "needs TLS"),
    ],
)
def test_auth_and_tls_settings_that_contradict_are_refused(
    env: dict[str, str], complaint: str
) -> None:
    """Settings that cannot mean what the operator wants are refused, saying why."""
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_env(env)
