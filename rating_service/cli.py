"""The ``rating-service`` command: serve, verify, migrate, status, report, reconcile, stripe setup,
token."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from rating_service import logs
from rating_service.config import Settings, SettingsError
from rating_service.reporter.settings import ReporterSettingsError
from rating_service.service.clock import system_clock


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rating-service",
        description="Prices AI support outcomes and keeps an append-only ledger of what is owed. "
        "Settings come from RATING_* and STRIPE_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the gRPC server (migrates the database first)")
    commands.add_parser("verify", help="replay the ledger and check chain, sums and balances")
    commands.add_parser("migrate", help="bring the database schema to the newest version")
    status = commands.add_parser(
        "status",
        help="per customer: buckets, this month's usage and charges, pending, reporter lag",
    )
    status.add_argument("customer_id", nargs="?", help="only this customer (default: all)")
    status.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    report = commands.add_parser(
        "report",
        help="mirror the ledger to Stripe (meter events, credit grants); needs STRIPE_API_KEY",
    )
    report.add_argument("--once", action="store_true", help="one pass, then exit (0: all reported)")
    report.add_argument(
        "--retry-parked", action="store_true", help="resume customers parked by a permanent error"
    )
    commands.add_parser(
        "reconcile", help="compare Stripe's meter totals and credit grants with the ledger"
    )
    token = commands.add_parser(
        "token", help="make a new random token and print it with its tokens-file line"
    )
    token.add_argument("caller", help="the caller's name (logs and metrics show it)")
    token.add_argument("scopes", help="comma-separated: record, consume, read, admin")
    stripe = commands.add_parser("stripe", help="Stripe set-up")
    stripe_commands = stripe.add_subparsers(dest="stripe_command", required=True, metavar="ACTION")
    setup = stripe_commands.add_parser(
        "setup", help="create the billing meters the rate cards' outcome types need"
    )
    setup.add_argument("--check", action="store_true", help="only check; exit 1 if any is missing")
    return parser


async def _verify(settings: Settings) -> int:
    from rating_service.bootstrap import open_engines, prepare_schema
    from rating_service.ledger.verify import verify

    await prepare_schema(settings, migrate=False)
    engines = open_engines(settings)
    try:
        report = await verify(engines)
    finally:
        await engines.dispose()
    for problem in report.problems:
        print(f"FAIL {problem}")
    verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
    print(f"verify: {report.customers} customers, {report.entries} entries: {verdict}")
    return 0 if report.ok else 1


async def _migrate(settings: Settings) -> int:
    from rating_service.bootstrap import prepare_schema

    await prepare_schema(settings, migrate=True)
    print("migrate: schema is up to date")
    return 0


async def _status(settings: Settings, customer_id: str | None, *, as_json: bool) -> int:
    from rating_service import bootstrap, status

    now = system_clock()
    async with bootstrap.ledger(settings, migrate=False) as store:
        statuses = await status.customer_statuses(store, customer_id, now)
    print(status.as_json(statuses, now) if as_json else status.as_text(statuses, now))
    if customer_id is not None and not statuses:
        print(f"rating-service: no customer {customer_id!r}", file=sys.stderr)
        return 1
    return 0


async def _report(settings: Settings, *, once: bool, retry_parked: bool) -> int:
    from rating_service import bootstrap
    from rating_service.ledger import outbox
    from rating_service.reporter.gateway import TransientStripeError
    from rating_service.reporter.loop import Reporter

    async with (
        bootstrap.ledger(settings, migrate=True) as store,
        bootstrap.stripe(settings, system_clock) as gateway,
    ):
        if retry_parked:
            resumed = await store.write(lambda c: outbox.unpark_all(c, system_clock()))
            print(f"report: resumed {len(resumed)} parked customers {resumed}")
        reporter = Reporter(store, gateway, settings.reporter, system_clock)
        if not once:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await reporter.run_forever(stop)
            return 0
        try:
            result = await reporter.run_once()
        except TransientStripeError as error:
            print(f"report: Stripe failed, try again: {error}", file=sys.stderr)
            return 1
        backlog = await reporter.refresh_gauges()
        print(
            f"report: planned {result.planned_entries} entries, sent {result.events_sent} meter "
            f"events, created {result.grants_created} credit grants; backlog "
            f"{backlog.entries_unplanned} entries, {backlog.events_unsent} events"
        )
        for customer_id, reason in sorted(backlog.parked.items()):
            print(f"PARKED {customer_id}: {reason}")
        return 1 if backlog.parked or backlog.events_unsent else 0


async def _reconcile(settings: Settings) -> int:
    from rating_service import bootstrap
    from rating_service.reporter.reconcile import format_table, reconcile

    async with (
        bootstrap.ledger(settings, migrate=False) as store,
        bootstrap.stripe(settings, system_clock) as gateway,
    ):
        result = await reconcile(store, gateway, settings.reporter, system_clock())
    print(format_table(result))
    return 0 if result.ok else 1


async def _stripe_setup(settings: Settings, *, check: bool) -> int:
    from rating_service import bootstrap
    from rating_service.reporter.setup import ensure_meters

    async with (
        bootstrap.ledger(settings, migrate=False) as store,
        bootstrap.stripe(settings, system_clock) as gateway,
    ):
        lines, missing = await ensure_meters(store, gateway, settings.reporter, create=not check)
    print("\n".join(lines))
    return 1 if missing else 0


def _needs_stripe(settings: Settings) -> bool:
    if settings.reporter.api_key:
        return True
    print("rating-service: STRIPE_API_KEY is not set", file=sys.stderr)
    return False


def _token(caller: str, scopes: str) -> int:
    """A new token (printed once: only its digest is kept) and its tokens-file line."""
    import secrets

    from rating_service.api.auth import TokensFileError, parse_tokens, token_digest

    token = secrets.token_urlsafe(32)
    line = f"{caller} {token_digest(token)} {scopes}"
    try:
        parse_tokens(line, "the line")
    except TokensFileError as error:
        print(f"rating-service: {error}", file=sys.stderr)
        return 2
    print(f"token: {token}\nline:  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "token":
        return _token(args.caller, args.scopes)
    try:
        settings = Settings.from_env()
    except (SettingsError, ReporterSettingsError) as error:
        print(f"rating-service: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "serve":
        from rating_service.api.server import ListenError
        from rating_service.app import serve

        try:
            return asyncio.run(serve(settings))
        except ListenError as error:
            print(f"rating-service: {error}", file=sys.stderr)
            return 1
        except SettingsError as error:  # auth or TLS settings that cannot serve
            print(f"rating-service: {error}", file=sys.stderr)
            return 2
    from rating_service.ledger.migrate import SchemaNotCurrent

    try:
        return asyncio.run(_command(args, settings))
    except SchemaNotCurrent as error:
        print(f"rating-service: {error}", file=sys.stderr)
        return 2


async def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "verify":
        return await _verify(settings)
    if args.command == "migrate":
        return await _migrate(settings)
    if args.command == "status":
        return await _status(settings, args.customer_id, as_json=args.json)
    if not _needs_stripe(settings):
        return 2
    if args.command == "report":
        return await _report(settings, once=args.once, retry_parked=args.retry_parked)
    if args.command == "reconcile":
        return await _reconcile(settings)
    return await _stripe_setup(settings, check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
