"""The one place that builds the ledger store, its writer, the Stripe gateway, and the
server's token table and TLS credentials.

Every command opens the ledger the same way. Those that write (``serve``,
``migrate``, ``report``) first bring the schema to the newest revision; those
that only read (``verify``, ``reconcile``, ``stripe setup``) refuse a database
that ``migrate`` has not brought up to date, so they never create or change
one. The store's group-commit writer always runs, so any use case works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from rating_service.api.auth import TokensFileError, TokenTable, load_tokens
from rating_service.config import Settings, SettingsError
from rating_service.ledger.engine import Engines, create_engines
from rating_service.ledger.migrate import require_current, upgrade
from rating_service.ledger.repositories.page_token_key import read_page_token_key
from rating_service.reporter.gateway import Gateway
from rating_service.reporter.service import RunningReporter, make_gateway, start_reporter
from rating_service.service.clock import Clock
from rating_service.service.store import LedgerStore


async def prepare_schema(settings: Settings, *, migrate: bool) -> None:
    """Migrate (writers) or check that the schema is current (readers)."""
    if migrate:
        await upgrade(settings.database_url)
    else:
        await require_current(settings.database_url)


def open_engines(settings: Settings) -> Engines:
    return create_engines(settings.database_url)


async def open_store(settings: Settings, *, migrate: bool, working_set: bool = True) -> LedgerStore:
    """The store, its writer started; the caller closes it. ``working_set``: whether a SQLite
    writer keeps one between batches (``serve`` says no when another server has the file)."""
    await prepare_schema(settings, migrate=migrate)
    store = LedgerStore(open_engines(settings), working_set=working_set)
    store.start()
    return store


async def page_token_key(store: LedgerStore) -> bytes:
    """The key the API signs page tokens with: the same for every server sharing the ledger."""
    return await store.read(read_page_token_key)


@asynccontextmanager
async def ledger(settings: Settings, *, migrate: bool) -> AsyncIterator[LedgerStore]:
    store = await open_store(settings, migrate=migrate)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def stripe(settings: Settings, clock: Clock) -> AsyncIterator[Gateway]:
    """The Stripe gateway (STRIPE_API_KEY must be set)."""
    gateway = make_gateway(settings.reporter, clock)
    try:
        yield gateway
    finally:
        await gateway.close()


def reporter(store: LedgerStore, settings: Settings, clock: Clock) -> RunningReporter | None:
    """The Stripe reporter inside ``serve``, when STRIPE_API_KEY is set."""
    return start_reporter(store, settings.reporter, clock) if settings.reporter.api_key else None


def token_table(settings: Settings) -> TokenTable | None:
    """The callers of RATING_AUTH_TOKENS_FILE; None when it is not set (auth off)."""
    if not settings.auth_tokens_file:
        return None
    try:
        return load_tokens(settings.auth_tokens_file)
    except TokensFileError as error:
        raise SettingsError(f"RATING_AUTH_TOKENS_FILE: {error}") from None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS from RATING_TLS_CERT and RATING_TLS_KEY, mutual with RATING_TLS_CLIENT_CA; None: off."""
    if not settings.tls_cert or not settings.tls_key:
        return None
    cert = _pem("RATING_TLS_CERT", settings.tls_cert, "CERTIFICATE")
    key = _pem("RATING_TLS_KEY", settings.tls_key, "PRIVATE KEY")
    client_ca = (
        _pem("RATING_TLS_CLIENT_CA", settings.tls_client_ca, "CERTIFICATE")
        if settings.tls_client_ca
        else None
    )
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _pem(variable: str, path: str, kind: str) -> bytes:
    """The PEM file ``path`` names, refused early (naming it) when unreadable or not PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SettingsError(f"{variable}: cannot read {path}: {error.strerror}") from None
    if b"-----BEGIN " not in data or kind.encode() not in data:
        raise SettingsError(f"{variable}: {path} holds no PEM {kind.lower()}")
    return data
