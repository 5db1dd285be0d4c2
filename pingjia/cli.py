"""The `pingjia` command: serve, token create, db upgrade, and the parts' tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from pingjia import logs, sms_cli
from pingjia.app import package_version
from pingjia.auth import ROLES
from pingjia.commands import CommandGroup, call, db, outbox, prompts, scheduler, serve
from pingjia.composition import build_services, system_clock
from pingjia.ivr_prompts import PromptsMissing
from pingjia.settings import Settings
from rating.errors import DomainError, ProfileError

GROUPS: tuple[CommandGroup, ...] = (serve, db, call, prompts, scheduler, sms_cli, outbox)


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
    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser(
        "create",
        help="create a bearer token and print it (it is shown only once)",
        description="Create a token for `Authorization: Bearer TOKEN` on /api/.",
    )
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. a system name")
    create.add_argument(
        "--agency",
        help="role agency (required there): the agency whose tickets the token sees, "
        "e.g. 台山市市场监督管理局",
    )
    for group in GROUPS:
        group.add_commands(commands)
    return parser


async def _token_create(settings: Settings, role: str, name: str, agency: str | None) -> str:
    services = await build_services(settings)
    try:
        return await services.tokens.create(role, name, system_clock(), agency=agency)
    finally:
        await services.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pingjia` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "token" and args.role == "agency" and not (args.agency or "").strip():
        parser.error("--role agency needs --agency NAME: the agency whose tickets it sees")
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"pingjia: bad settings:\n{exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "token":
            print(asyncio.run(_token_create(settings, args.role, args.name, args.agency)))
            return 0
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
