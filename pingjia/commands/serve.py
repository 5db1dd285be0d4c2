"""`pingjia serve`: HTTP, FastAGI and the sweeps in one process until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog
from aiohttp import web

from pingjia import runtime
from pingjia.composition import build_services
from pingjia.lifecycle import AGI, serving_app
from pingjia.settings import Settings

COMMANDS = ("serve",)
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'

log = structlog.get_logger("pingjia")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser(
        "serve",
        help="run the service in one process until Ctrl-C",
        description="Create or upgrade the database schema, then serve until Ctrl-C.",
    )


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM; start and stop are the app's (pingjia/lifecycle.py)."""
    services = await build_services(settings)
    try:
        app = serving_app(services)
    except BaseException:
        await services.close()
        raise
    runner = web.AppRunner(app, access_log_format=ACCESS_LOG_FORMAT)
    try:
        await runner.setup()  # FastAGI and the sweeps start here, the HTTP site below
        await web.TCPSite(runner, settings.bind, settings.http_port).start()
        runtime.settle_gc()  # no 50-280 ms collector pauses in the calls' p99
        log.info(
            "pingjia serving",
            http=f"http://{settings.bind}:{settings.http_port}",
            agi=f"agi://{settings.bind}:{settings.agi_port}/{{{','.join(app[AGI].scripts)}}}",
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
        await stop.wait()
        log.info("pingjia stopping")
    finally:
        await runner.cleanup()  # the HTTP site, then the sweeps, FastAGI, the services
