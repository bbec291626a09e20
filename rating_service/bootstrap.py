"""The one place that builds the ledger store, its writer and the Stripe gateway.

Every command opens the ledger the same way. Those that write (``serve``,
``migrate``, ``report``) first bring the schema to the newest revision; those
that only read (``verify``, ``reconcile``, ``stripe setup``) refuse a database
that ``migrate`` has not brought up to date, so they never create or change
one. The store's group-commit writer always runs, so any use case works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rating_service.config import Settings
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


async def open_store(settings: Settings, *, migrate: bool) -> LedgerStore:
    """The store, its writer started; the caller closes it."""
    await prepare_schema(settings, migrate=migrate)
    store = LedgerStore(open_engines(settings))
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
