"""`pingjia token create|list|revoke`: API tokens, as an operator manages them.

A token's secret is printed once, by `create`; `list` shows what may be shown (never the
secret nor its hash); `revoke` takes effect at once on every process, since every request
checks its token in the shared database.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, tzinfo

from pingjia.auth import ROLES, TokenInfo
from pingjia.composition import build_services, system_clock
from pingjia.settings import Settings

COMMANDS = ("token",)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `token` group and its actions."""
    token = commands.add_parser("token", help="manage API tokens (create, list, revoke)")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create a bearer token and print it (it is shown only once)",
        description="Create a token for `Authorization: Bearer TOKEN` on /api/.",
    )
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. a system name")
    create.add_argument(
        "--agency",
        help="role agency (required there): the agency whose tickets the token sees, "
        "e.g. 台山市市场监督管理局; it must be named by some case, unless --force",
    )
    create.add_argument(
        "--force",
        action="store_true",
        help="create an agency token even though no case names that agency yet",
    )
    create.set_defaults(usage_error=create.error)  # its own usage line, exit status 2
    actions.add_parser(
        "list",
        help="list tokens: id, name, role, agency, created, last used, revoked (no secrets)",
        description="Every token, revoked ones too, oldest first; times in the profile's zone.",
    )
    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by its id or its name; refused at once everywhere",
        description="Revoke a token. An all-digit argument is an id (see `pingjia token list`); "
        "a name must belong to one live token.",
    )
    revoke.add_argument("token", metavar="NAME|ID", help="the token's name or id")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `token` action; DomainError (bad input) is reported by the caller."""
    if args.token_command == "create":
        if args.role == "agency" and not (args.agency or "").strip():
            args.usage_error("--role agency needs --agency NAME: the agency whose tickets it sees")
        print(asyncio.run(_create(settings, args.role, args.name, args.agency, args.force)))
    elif args.token_command == "list":
        print(asyncio.run(_list(settings)), end="")
    elif args.token_command == "revoke":
        print(asyncio.run(_revoke(settings, args.token)))
    return 0


async def _create(settings: Settings, role: str, name: str, agency: str | None, force: bool) -> str:
    services = await build_services(settings)
    try:
        return await services.tokens.issue(role, name, system_clock(), agency=agency, force=force)
    finally:
        await services.close()


async def _list(settings: Settings) -> str:
    services = await build_services(settings)
    try:
        tokens = await services.tokens.list_tokens()
        return table(tokens, services.profile.tz)
    finally:
        await services.close()


async def _revoke(settings: Settings, ref: str) -> str:
    services = await build_services(settings)
    try:
        before = {t.id: t.revoked_at for t in await services.tokens.list_tokens()}
        token = await services.tokens.revoke(ref, "cli", system_clock())
    finally:
        await services.close()
    when = _when(token.revoked_at, services.profile.tz)
    if before.get(token.id) is not None:
        return f"token {token.id} ({token.name}) was already revoked at {when}"
    return f"revoked token {token.id} ({token.name}, {token.role}) at {when}"


def _when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "-"


def table(tokens: list[TokenInfo], tz: tzinfo) -> str:
    """Tab-separated, a header first: easy to read, and to cut or grep."""
    lines = ["id\tname\trole\tagency\tcreated\tlast used\trevoked"]
    for t in tokens:
        lines.append(
            "\t".join(
                [
                    str(t.id),
                    t.name,
                    t.role,
                    t.agency or "-",
                    _when(t.created_at, tz),
                    _when(t.last_used_at, tz) if t.last_used_at else "never",
                    _when(t.revoked_at, tz),
                ]
            )
        )
    return "\n".join(lines) + "\n"
