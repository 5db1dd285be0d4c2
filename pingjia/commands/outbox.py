"""`pingjia outbox dead` and `pingjia outbox retry`: dead letters, listed and re-armed.

The bridge gives up on a row for the central store, or on a ticket's transfer to 12345, after
8 failed tries (docs/bridge.md). Once the other side is back, `retry` re-arms them and the
running scheduler's `outbox` and `ticket_transfer` sweeps send them on their next run. Only the
database and the profile (for local times) are opened: no SMS provider, no secret key.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import tzinfo

from sqlalchemy.exc import DBAPIError

from pingjia.composition import system_clock
from pingjia.settings import Settings
from rating.db import engine as db
from rating.dead_letters.desk import DeadLetter, DeadLetterDesk, DeadLetterList, Rearmed
from rating.policy.loader import load_profile

COMMANDS = ("outbox",)
DEFAULT_LIMIT = 50
ERROR_WIDTH = 72
ACTOR = "cli"  # the audit log's actor, as `pingjia token create` writes it
HOW = "re-arm with: pingjia outbox retry --id N | --ticket TICKET_NO | --all"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser(
        "outbox", help="dead-lettered posts to the central store and ticket transfers to 12345"
    )
    actions = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    dead = actions.add_parser(
        "dead",
        help="list dead-lettered items, newest first",
        description=(
            "Outbox rows and ticket transfers the bridge gave up on after its last try: id "
            "(or ticket number), topic, Idempotency-Key, tries, when, and the last error."
        ),
    )
    dead.add_argument(
        "--limit", type=_positive, default=DEFAULT_LIMIT, help="show at most N (default 50)"
    )
    retry = actions.add_parser(
        "retry",
        help="re-arm dead-lettered items so the running sweeps send them again",
        description=(
            "Clear the dead letter, count the tries from zero and make the item due now; the "
            "`outbox` sweep (every 5 s) or `ticket_transfer` sweep (every 15 s) of the running "
            "`pingjia serve` or `pingjia scheduler` then sends it. Items already sent are left "
            "alone. Exit status 1 names any id or ticket that was not re-armed."
        ),
    )
    retry.add_argument(
        "--id",
        dest="ids",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="an outbox row's id, as `outbox dead` lists it (repeatable)",
    )
    retry.add_argument(
        "--ticket",
        dest="tickets",
        action="append",
        default=[],
        metavar="TICKET_NO",
        help="a ticket whose transfer to 12345 was dead-lettered (repeatable)",
    )
    retry.add_argument(
        "--all", dest="everything", action="store_true", help="every dead-lettered item"
    )
    retry.set_defaults(usage_error=retry.error)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.outbox_command == "retry" and bool(args.ids or args.tickets) == args.everything:
        args.usage_error("name what to re-arm: --id N and/or --ticket TICKET_NO, or --all alone")
    try:
        return asyncio.run(_run(args, settings))
    except DBAPIError as exc:
        print(f"pingjia outbox: the database refused: {exc.orig}", file=sys.stderr)
        print(
            "  is PINGJIA_DATABASE_URL the server's, with its schema up to date "
            "(pingjia db upgrade)?",
            file=sys.stderr,
        )
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    tz = load_profile(settings.profile).tz
    engine = db.create_engine(settings.database_url, pool_size=1)
    try:
        desk = DeadLetterDesk(db.sessionmaker(engine))
        if args.outbox_command == "dead":
            print_dead(await desk.dead(args.limit), tz)
            return 0
        done = await desk.rearm(
            ids=args.ids,
            ticket_nos=args.tickets,
            everything=args.everything,
            actor=ACTOR,
            now=system_clock(),
        )
        return print_rearmed(done, args.everything)
    finally:
        await engine.dispose()


def _short(text: str | None) -> str:
    line = " ".join((text or "-").split())
    return line if len(line) <= ERROR_WIDTH else line[: ERROR_WIDTH - 1] + "…"


def _row(item: DeadLetter, tz: tzinfo) -> list[str]:
    when = item.dead_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if item.dead_at else "-"
    error = _short(item.last_error)
    return [item.kind, item.ref, item.topic, item.key, str(item.attempts), when, error]


def _table(rows: Sequence[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def print_dead(found: DeadLetterList, tz: tzinfo) -> None:
    """The table of `pingjia outbox dead`, or one line when there is nothing."""
    if not found.items:
        print("no dead-lettered items: every outbox row and ticket transfer is sent or in retry")
        return
    print(
        f"{found.total} dead-lettered ({found.outbox_total} outbox, {found.ticket_total} "
        f"ticket transfer), newest first"
    )
    header = ["KIND", "ID", "TOPIC", "KEY", "TRIES", f"DEAD AT ({tz})", "LAST ERROR"]
    for line in _table([header, *(_row(item, tz) for item in found.items)]):
        print(line.rstrip())
    if len(found.items) < found.total:
        print(f"showing the {len(found.items)} newest of {found.total}: --limit N shows more")
    print(HOW)


def print_rearmed(done: Rearmed, everything: bool) -> int:
    """What `pingjia outbox retry` did; 1 when anything named was not re-armed."""
    if everything and done.count == 0:
        print("no dead-lettered items: nothing to re-arm")
        return 0
    names = [f"outbox {r.ref}" for r in done.outbox] + [f"ticket {r.ref}" for r in done.tickets]
    print(
        f"re-armed {done.count} ({len(done.outbox)} outbox, {len(done.tickets)} ticket "
        f"transfer){': ' + ', '.join(names) if names else ''}"
    )
    if done.count:
        print("  the running scheduler's outbox and ticket_transfer sweeps send them next")
    for refused in done.refused:
        print(f"not re-armed: {refused.kind} {refused.ref}: {refused.reason}", file=sys.stderr)
    return 1 if done.refused else 0
