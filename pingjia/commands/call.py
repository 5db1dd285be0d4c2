"""`pingjia call`: a console softphone that calls the running FastAGI server as Asterisk would,
then prints what was stored, as the server's API answers (pingjia/case_lookup.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from asterisk_sim.caller import Caller, KeyboardCaller, ScriptedCaller, parse_keys
from asterisk_sim.softphone import Console, find_player, place_call, prompt_sounds
from ivr.flows import FLOWS
from pingjia.case_lookup import TOKEN_VARIABLE, LookupFailed, no_token_hint, print_cases
from pingjia.ivr_prompts import required_prompts
from pingjia.settings import Settings
from prompts import catalog
from rating.policy.loader import load_profile

COMMANDS = ("call",)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    phone = commands.add_parser(
        "call",
        help="call the running FastAGI server from the console, as Asterisk would",
        description=(
            "A console softphone: connects to `pingjia serve`'s FastAGI port, shows each "
            "prompt, sends your keys, and prints the rating and tickets that were stored, as "
            "the server's API answers (needs a token of that server: --token or "
            f"{TOKEN_VARIABLE}). -v shows every AGI line."
        ),
    )
    phone.add_argument("--case", action="append", default=[], help="case number (repeatable)")
    phone.add_argument(
        "--keys",
        help="keys to press instead of asking, e.g. 4,1,# (h hangs up, 4@0 barges in, t5000 talks)",
    )
    phone.add_argument("--host", help="FastAGI host (default: PINGJIA_BIND)")
    phone.add_argument("--port", type=int, help="FastAGI port (default: PINGJIA_AGI_PORT)")
    phone.add_argument("--caller-id", default="unknown", help="the caller's number")
    phone.add_argument("--script", default="rating", choices=sorted(FLOWS), help="AGI script")
    phone.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE) or None,
        help=f"API token to read the stored result with (default: {TOKEN_VARIABLE})",
    )
    phone.add_argument(
        "--api",
        metavar="URL",
        help="the server's HTTP address (default: http://HOST:PINGJIA_HTTP_PORT)",
    )
    phone.add_argument(
        "--missing-sound",
        action="append",
        default=[],
        metavar="NAME",
        help="simulate an Asterisk host without this sound: a prompt id (rating_greeting) or "
        "Asterisk's core beep (beep); repeatable",
    )
    phone.add_argument(
        "--no-recordings-folder",
        action="store_true",
        help="simulate an Asterisk host whose recordings folder does not exist (writefile)",
    )


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.keys is not None:
        try:
            parse_keys(args.keys)
        except ValueError as exc:
            print(f"pingjia call: {exc}", file=sys.stderr)
            return 2
    host = args.host or settings.local_host
    api = args.api or (f"http://{host}:{settings.http_port}" if args.host else settings.local_api)
    return asyncio.run(
        call(
            settings,
            case_nos=list(args.case),
            keys=args.keys,
            host=host,
            port=args.port or settings.agi_port,
            caller_id=args.caller_id,
            script=args.script,
            verbose=args.verbose >= 1,
            api=api,
            token=args.token,
            missing_sounds=list(args.missing_sound),
            recordings_folder_exists=not args.no_recordings_folder,
        )
    )


async def call(
    settings: Settings,
    *,
    case_nos: list[str],
    keys: str | None,
    host: str,
    port: int,
    caller_id: str,
    script: str = "rating",
    verbose: bool = False,
    api: str | None = None,
    token: str | None = None,
    missing_sounds: Sequence[str] = (),
    recordings_folder_exists: bool = True,
) -> int:
    """One call as Asterisk would place it; prints what the server stored (with a token)."""
    caller: Caller = (
        ScriptedCaller(parse_keys(keys)) if keys is not None else KeyboardCaller(input, print)
    )
    profile = load_profile(settings.profile)
    texts = {
        prompt_id: text
        for language in catalog.load_texts().values()
        for prompt_id, text in language.items()
    }
    texts.update({k: v for k, v in required_prompts(profile).items() if v})
    player = find_player() if keys is None and sys.stdin.isatty() else None
    console = Console(
        texts, prompt_sounds(catalog.AUDIO), print, player, verbose, set(missing_sounds)
    )
    query = "&".join(f"case={c}" for c in case_nos)
    print(f"☎  calling agi://{host}:{port}/{script}{'?' + query if query else ''}")
    try:
        result = await place_call(
            host,
            port,
            f"{script}?{query}" if query else script,
            caller,
            console,
            caller_id=caller_id,
            recordings_folder_exists=recordings_folder_exists,
        )
    except OSError as exc:
        print(f"pingjia call: cannot reach the FastAGI server at {host}:{port}: {exc}")
        print("  is `pingjia serve` running? (--host/--port, PINGJIA_AGI_PORT)")
        return 1
    if not token:
        no_token_hint()
        return 0
    try:
        await print_cases(
            api or f"http://{host}:{settings.http_port}",
            token,
            case_nos or [f"IVR-{result.uniqueid}"],
        )
    except LookupFailed as exc:
        print(f"pingjia call: {exc}", file=sys.stderr)
        return 1
    return 0
