"""The `pingjia` command: the parser built from the command groups, and dispatch.

Exit status (README, "Commands"): 0 done; 1 failed (a server or database it could not reach,
an item it could not act on); 2 bad usage or bad settings (the message names the option or the
environment variable); 130 interrupted (Ctrl-C). `serve` and `scheduler` stop on Ctrl-C or
SIGTERM as they are meant to, with 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, cast

from pydantic import ValidationError

from ivr.dial import DialTemplateError
from pingjia import bad_settings, logs, sms_cli
from pingjia.app import package_version
from pingjia.commands import (
    CommandGroup,
    Subparsers,
    call,
    db,
    outbox,
    prompts,
    scheduler,
    serve,
    token,
)
from pingjia.ivr_prompts import PromptsMissing
from pingjia.settings import Settings
from rating.errors import DomainError, ProfileError

GROUPS: tuple[CommandGroup, ...] = (serve, token, db, call, prompts, scheduler, sms_cli, outbox)
OK, FAILED, BAD_USAGE, INTERRUPTED = 0, 1, 2, 130
# Services log what they do at PINGJIA_LOG_LEVEL (INFO); one-shot tools print their result
# and log only warnings unless -v asks for more, or PINGJIA_LOG_LEVEL is set.
SERVICES = frozenset({"serve", "scheduler"})


class Parser(argparse.ArgumentParser):
    """Every command and action takes -v/--verbose, before or after its name: subparsers are
    made of the parser's own class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,  # a subcommand's default must not undo `pingjia -v`
            help="more output: -v informational log lines, -vv debugging ones",
        )


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pingjia",
        description=(
            "pingjia: the 12345 hotline rating service (好差评). Settings come from PINGJIA_* "
            "environment variables or a .env file; see the README's settings table."
        ),
        epilog="exit status: 0 done, 1 failed, 2 bad usage or bad settings, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"pingjia {package_version()}")
    # Subparsers of the Parser class (so each takes -v), handed to groups typed as plain ones.
    commands = cast(
        Subparsers, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    )
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def log_level(settings: Settings, command: str, verbosity: int) -> str:
    """-vv: DEBUG; -v: at least INFO; else PINGJIA_LOG_LEVEL when it is set, INFO for the
    services and WARNING for the one-shot tools when it is not."""
    if verbosity >= 2:
        return "DEBUG"
    if "log_level" in settings.model_fields_set:
        chosen = settings.log_level
    else:
        chosen = "INFO" if command in SERVICES else "WARNING"
    if verbosity == 1 and logging.getLevelName(chosen) > logging.INFO:
        return "INFO"
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pingjia` command."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("pingjia: interrupted", file=sys.stderr)
        return INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", 0)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in bad_settings.describe(exc):
            print(f"pingjia: bad setting {line}", file=sys.stderr)
        return BAD_USAGE
    logs.configure(
        log_level(settings, args.command, args.verbose),
        settings.log_format,
        libraries=args.verbose >= 1,
    )
    try:
        group = next(g for g in GROUPS if args.command in g.COMMANDS)
        return group.run_command(args, settings)
    except DialTemplateError as exc:  # parsed by the IVR part at composition
        print(f"pingjia: bad setting {exc}", file=sys.stderr)
        return BAD_USAGE
    except ValidationError as exc:  # a part's own settings block, read at composition
        for line in bad_settings.describe(exc):
            print(f"pingjia: bad setting {line}", file=sys.stderr)
        return BAD_USAGE
    except (ProfileError, DomainError, PromptsMissing) as exc:
        print(f"pingjia: {exc}", file=sys.stderr)
        return BAD_USAGE
    except OSError as exc:
        print(f"pingjia: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
