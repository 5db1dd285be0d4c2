"""The `pingjia` command: the parser built from the command groups, and dispatch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from pingjia import logs, sms_cli
from pingjia.app import package_version
from pingjia.commands import CommandGroup, call, db, outbox, prompts, scheduler, serve, token
from pingjia.ivr_prompts import PromptsMissing
from pingjia.settings import Settings
from rating.errors import DomainError, ProfileError

GROUPS: tuple[CommandGroup, ...] = (serve, token, db, call, prompts, scheduler, sms_cli, outbox)


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
    for group in GROUPS:
        group.add_commands(commands)
    return parser


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
        group = next(g for g in GROUPS if args.command in g.COMMANDS)
        return group.run_command(args, settings)
    except (ProfileError, DomainError, PromptsMissing) as exc:
        print(f"pingjia: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pingjia: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
