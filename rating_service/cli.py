"""The ``rating-service`` command: serve, verify, migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from rating_service.config import Settings, SettingsError


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
    return parser


async def _verify(settings: Settings) -> int:
    from rating_service.ledger.engine import create_engines
    from rating_service.ledger.verify import verify

    engines = create_engines(settings.database_url)
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
    from rating_service.ledger.migrate import upgrade

    await upgrade(settings.database_url)
    print("migrate: schema is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"rating-service: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "serve":
        from rating_service.api.server import ListenError
        from rating_service.app import serve

        try:
            return asyncio.run(serve(settings))
        except ListenError as error:
            print(f"rating-service: {error}", file=sys.stderr)
            return 1
    if args.command == "verify":
        return asyncio.run(_verify(settings))
    return asyncio.run(_migrate(settings))


if __name__ == "__main__":
    raise SystemExit(main())
