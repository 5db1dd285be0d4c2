"""The `pingjia` command: serve, token create, db upgrade, and the parts' tools."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import structlog
from aiohttp import web
from pydantic import ValidationError

from pingjia import background, ivr_wiring, logs, outbox_cli, runtime, sms_cli
from pingjia.app import build_app, package_version
from pingjia.commands import token
from pingjia.composition import build_services
from pingjia.settings import Settings
from rating.db import engine as db
from rating.errors import DomainError, ProfileError

log = structlog.get_logger("pingjia")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pingjia",
        description=(
            "pingjia: the 12345 hotline rating service (好差评). Settings come from PINGJIA_* "
            "environment variables or a .env file; see the README's settings table."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pingjia {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="run the service in one process until Ctrl-C",
        description="Create or upgrade the database schema, then serve until Ctrl-C.",
    )
    token.add_commands(commands)
    database = commands.add_parser("db", help="database schema")
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="create or upgrade the schema to the newest revision")
    ivr_wiring.add_commands(commands)
    background.add_commands(commands)
    sms_cli.add_commands(commands)
    outbox_cli.add_commands(commands)
    return parser


async def _serve(settings: Settings) -> None:
    services = await build_services(settings)
    try:
        agi = await ivr_wiring.start_agi(services)
    except BaseException:
        await services.close()
        raise
    jobs = background.build_background(services)
    app = build_app(services)
    runner = web.AppRunner(app, access_log_format='%a "%r" %s %b %Tfs')
    await runner.setup()
    site = web.TCPSite(runner, settings.bind, settings.http_port)
    await site.start()
    if settings.sweeps:  # else `pingjia scheduler` processes run them (PINGJIA_SWEEPS=false)
        jobs.scheduler.start()
    runtime.settle_gc()  # no 50-280 ms collector pauses in the calls' p99
    log.info(
        "pingjia serving",
        http=f"http://{settings.bind}:{settings.http_port}",
        agi=f"agi://{settings.bind}:{settings.agi_port}/{{{','.join(agi.scripts)}}}",
        profile=services.profile.name,
        database=settings.database_url.split("@")[-1],
        state="redis" if settings.redis_url else "in-process",
        sweeps="here" if settings.sweeps else "off (pingjia scheduler runs them)",
        sms_replies=settings.sms_replies,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("pingjia stopping")
        await agi.close()
        await jobs.close()
        await runner.cleanup()
        await services.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pingjia` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"pingjia: bad settings:\n{exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == token.COMMAND:
            return token.run(args, settings)
        elif args.command == "db":
            asyncio.run(db.upgrade(settings.database_url))
            print("database schema is up to date")
        elif args.command in background.COMMANDS:
            return background.run_command(args, settings)
        elif args.command in ivr_wiring.COMMANDS:
            return ivr_wiring.run_command(args, settings)
        elif args.command in sms_cli.COMMANDS:
            return sms_cli.run_command(args, settings)
        elif args.command in outbox_cli.COMMANDS:
            return outbox_cli.run_command(args, settings)
    except (ProfileError, DomainError, ivr_wiring.PromptsMissing) as exc:
        print(f"pingjia: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pingjia: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
