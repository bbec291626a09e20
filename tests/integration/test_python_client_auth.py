"""The Python client against a server with tokens and mutual TLS: it sends its token on every
call and opens the TLS channel from the certificates it is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from auth_support import Tokens, write_tokens
from certificates import Pki
from rating_client import PermissionDeniedError, RatingClient, UnauthenticatedError

from rating_service.app import Service, start
from rating_service.config import Settings


@pytest.fixture
async def secured(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Service, Tokens, Pki]]:
    pki = Pki.create(tmp_path / "pki")
    tokens = write_tokens(tmp_path / "tokens", {"operator": "admin", "reader": "read"})
    settings = Settings(
        database_url=database_url,
        listen="127.0.0.1:0",
        auth_tokens_file=str(tokens.path),
        tls_cert=str(pki.server.cert_path),
        tls_key=str(pki.server.key_path),
        tls_client_ca=str(pki.ca.cert_path),
    )
    running = await start(settings)
    yield running, tokens, pki
    await running.stop(grace=1.0)


def client(service: Service, pki: Pki, token: str | None) -> RatingClient:
    return RatingClient(
        f"127.0.0.1:{service.port}",
        token=token,
        root_certificates=pki.ca.cert,
        certificate_chain=pki.client.cert,
        private_key=pki.client.key,
        max_attempts=1,
    )


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_the_client_sends_its_token_over_mutual_tls(
    secured: tuple[Service, Tokens, Pki],
) -> None:
    """The admin's client writes; the reader's is refused PERMISSION_DENIED naming the scope;
    one without a token is UNAUTHENTICATED."""
    service, tokens, pki = secured
    async with client(service, pki, tokens["operator"]) as admin:
        version = await admin.put_rate_card(
            rate_card_id="card", currency_code="USD", prices={"resolution": Decimal("0.99")}
        )
        await admin.put_customer(customer_id="acme", rate_card_id="card")
    assert version.rate_card_id == "card"

    async with client(service, pki, tokens["reader"]) as reader:
        balance = await reader.get_balance(customer_id="acme")
        with pytest.raises(PermissionDeniedError) as denied:
            await reader.put_customer(customer_id="acme", rate_card_id="card")
    assert balance.period_outcomes == 0
    assert denied.value.reason == "PERMISSION_DENIED"
    assert denied.value.metadata == {"required_scope": "admin"}

    async with client(service, pki, None) as anonymous:
        with pytest.raises(UnauthenticatedError) as refused:
            await anonymous.get_balance(customer_id="acme")
        with pytest.raises(UnauthenticatedError):
            await anext(anonymous.watch_alerts())
    assert refused.value.reason == "UNAUTHENTICATED"


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_the_client_sends_its_token_on_the_alert_stream(
    secured: tuple[Service, Tokens, Pki],
) -> None:
    """WatchAlerts (server-streaming, scope read) carries the token too: the reader sees the
    alert an admin's spend threshold raised."""
    service, tokens, pki = secured
    async with client(service, pki, tokens["operator"]) as admin:
        await admin.put_rate_card(
            rate_card_id="card", currency_code="USD", prices={"resolution": Decimal("0.99")}
        )
        await admin.put_customer(customer_id="acme", rate_card_id="card")
        await admin.put_spend_controls(
            customer_id="acme",
            request_id="controls-1",
            currency_code="USD",
            alert_thresholds=[Decimal("0.50")],
        )
        await admin.record_outcome(
            customer_id="acme", outcome_id="conv-1", outcome_type="resolution"
        )

    async with client(service, pki, tokens["reader"]) as reader:
        alerts = reader.watch_alerts(customer_id="acme")
        alert = await anext(alerts)
        await alerts.aclose()
    assert alert.customer_id == "acme"


def test_the_client_refuses_half_a_client_certificate_or_a_bad_token() -> None:
    """A certificate without its key, or a token with a space, is a mistake caught at once."""
    with pytest.raises(ValueError, match="certificate_chain and private_key"):
        RatingClient(certificate_chain=b"x")
    with pytest.raises(ValueError, match="token"):
        RatingClient(token="two words")
