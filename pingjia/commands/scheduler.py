"""`pingjia scheduler`: the sweeps alone, without HTTP or FastAGI, beside `pingjia serve`."""

from __future__ import annotations

import argparse
import asyncio
import signal

from pingjia.background import build_background
from pingjia.composition import build_services
from pingjia.settings import Settings
from sms.service import as_events

COMMANDS = ("scheduler",)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "scheduler",
        help="run only the scheduler's sweeps (default ratings, alerts, outbox, SMS) until Ctrl-C",
        description=(
            "Run the sweeps without HTTP or FastAGI. Safe beside `pingjia serve` and other "
            "schedulers on one PostgreSQL: every sweep claims its rows (FOR UPDATE SKIP LOCKED)."
        ),
    )
    parser.add_argument("--once", action="store_true", help="run every sweep once, print, exit")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    handled = asyncio.run(_scheduler(settings, args.once))
    if args.once:
        for name, count in handled.items():
            print(f"{name}: {count}")
    return 0


async def _scheduler(settings: Settings, once: bool) -> dict[str, int]:
    services = await build_services(settings)
    await services.sms_provider.start(as_events(services.sms))  # an SMPP session binds
    jobs = build_background(services)
    calling = any(s.name == "outbound_surveys" for s in jobs.scheduler.sweeps)
    if calling and services.calls.ami is not None:
        # `pingjia serve` connects in start_agi; a scheduler alone connects for its sweep.
        await services.calls.ami.start()
    try:
        if once:
            handled = await jobs.scheduler.run_all()
            await services.calls.settle()  # the calls' outcomes, before closing
            return handled
        jobs.scheduler.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return dict(jobs.scheduler.runs)
    finally:
        await jobs.close()
        await services.close()
