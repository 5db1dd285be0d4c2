"""Wiring of the IVR part: the FastAGI server beside HTTP, prompts, the console softphone."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from ivr.flows import FLOWS, IvrContext, Runner, runners
from ivr.prompt_check import PromptCheck
from ivr.server import AgiServer
from ivr.sim_caller import Caller, KeyboardCaller, ScriptedCaller, parse_keys
from ivr.softphone import Console, find_player, place_call, prompt_sounds
from pingjia.composition import Services, build_services
from pingjia.settings import Settings
from prompts import build as prompt_build
from prompts import catalog
from rating.cases.repository import Repository
from rating.errors import NotFound
from rating.policy.loader import builtin_profiles, load_profile
from rating.policy.profile import Profile
from rating.ratings.requests import RatingOutcome, RatingRequest
from rating.ratings.service import RatingService
from rating.tickets.models import Ticket

log = structlog.get_logger("pingjia")


class PromptsMissing(RuntimeError):
    """Flows would play prompts that were never built; the message names them."""


def required_prompts(profile: Profile) -> dict[str, str | None]:
    """Every prompt any flow plays with this profile (id -> text when the flow writes it)."""
    needed: dict[str, str | None] = {}
    for flow in FLOWS.values():
        needed.update(flow.prompts(profile))
    return needed


def check_prompts(profile: Profile) -> None:
    missing = catalog.missing_audio(profile.prompt_language, list(required_prompts(profile)))
    if missing:
        raise PromptsMissing(
            f"{len(missing)} prompt(s) the IVR flows play are not built for language "
            f"{profile.prompt_language!r}: {', '.join(missing)}; run `pingjia prompts build`"
        )


def prompt_check(context: IvrContext) -> PromptCheck:
    """The sounds the flows play (as Asterisk names them) and the core beep RECORD FILE plays,
    to look for on each Asterisk host at its first call and hourly."""
    sounds = [context.prompt(prompt_id) for prompt_id in required_prompts(context.profile)]
    return PromptCheck([*sounds, "beep"])


def pool_capacity(engine: AsyncEngine) -> int:
    """Connections the engine's pool hands out at most (pool size plus overflow)."""
    pool = engine.pool
    size = pool.size() if isinstance(pool, QueuePool) else 1
    return max(1, size + max(0, int(getattr(pool, "_max_overflow", 0))))


def ivr_context(services: Services) -> IvrContext:
    """The flows' context; their database work is admitted up to the pool's capacity, so a
    burst of calls queues in-process instead of timing out on the pool's checkout."""
    return IvrContext(
        ratings=services.ratings,
        clock=services.clock,
        recordings_dir=services.settings.recordings_dir,
        db_slots=pool_capacity(services.engine),
    )


class ChannelRatings(RatingService):
    """The rating service as one AGI script sees it: its phone ratings are recorded under
    another channel. Shares everything else (its batches, its profile) with `inner`."""

    def __init__(self, inner: RatingService, channel: str) -> None:  # no super(): a view
        self._inner = inner
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def rate(self, request: RatingRequest, *, actor: str, now: datetime) -> RatingOutcome:
        if request.channel == "ivr":
            request = dataclasses.replace(request, channel=self._channel)
        return await self._inner.rate(request, actor=actor, now=now)


def script_runners(context: IvrContext) -> dict[str, Runner]:
    """The flows bound to the context; the `survey` script (an outbound rating call pingjia
    placed, 电话回访) records its ratings as channel `survey`, so reports tell it from a rating
    after the citizen's own call. Its context shares the calls' write set (one drain)."""
    table = runners(context)
    survey = dataclasses.replace(
        context, ratings=ChannelRatings(context.ratings, "survey"), writes=context.writes
    )
    table["survey"] = runners(survey)["survey"]
    return table


class IvrServer(AgiServer):
    """The FastAGI server of `pingjia serve`: closing it also waits for the ratings being
    written (a write outlives a call cancelled at shutdown) before the database closes."""

    write_grace = 30.0  # a write's own retries take a few seconds at most

    def __init__(self, context: IvrContext, services: Services) -> None:
        super().__init__(
            script_runners(context),
            observer=services.metrics.agi,
            prompt_check=prompt_check(context),
        )
        self.context = context

    async def close(self, grace: float = 5.0) -> None:
        await super().close(grace)
        await self.context.drain(self.write_grace)


async def start_agi(services: Services) -> AgiServer:
    """Check the prompts, then serve FastAGI on PINGJIA_BIND:PINGJIA_AGI_PORT."""
    check_prompts(services.profile)
    server = IvrServer(ivr_context(services), services)
    await server.start(services.settings.bind, services.settings.agi_port)
    if services.calls.ami is not None:
        # In the background: an Asterisk that is down or restarting must not stop pingjia.
        await services.calls.ami.start()
    return server


def build_prompts(settings: Settings, force: bool = False) -> prompt_build.BuildReport:
    """Build the prompts of every flow for the configured profile and the built-in ones."""
    profiles = {name: load_profile(name) for name in builtin_profiles()}
    configured = load_profile(settings.profile)
    profiles[configured.name] = configured
    report = prompt_build.BuildReport()
    for language in sorted({p.prompt_language for p in profiles.values()}):
        needed: dict[str, str | None] = {}
        for profile in profiles.values():
            if profile.prompt_language == language:
                needed.update(required_prompts(profile))
        texts = catalog.texts_for(language, needed)
        done = prompt_build.build(language, texts, force=force, progress=print, prune=True)
        report.built += done.built
        report.kept += done.kept
        report.formats = done.formats
    tones = prompt_build.build_tones(progress=print)  # Asterisk's `beep`, for images without it
    report.built += tones.built
    report.kept += tones.kept
    return report


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
    missing_sounds: Sequence[str] = (),
    recordings_folder_exists: bool = True,
) -> int:
    """`pingjia call`: one call as Asterisk would place it; prints what was stored."""
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
    await _print_stored(settings, case_nos or [f"IVR-{result.uniqueid}"])
    return 0


async def _print_stored(settings: Settings, case_nos: list[str]) -> None:
    services = await build_services(settings, migrate=False)
    try:
        for case_no in case_nos:
            await print_case(services, case_no)
    finally:
        await services.close()


async def print_case(services: Services, case_no: str) -> None:
    try:
        evaluation = await services.ratings.evaluation(case_no)
    except NotFound as exc:  # the call never reached the write, or another database
        print(f"case {case_no}: {exc.message} in {_where(services)}")
        return
    except DBAPIError as exc:  # an empty file, a database the server does not use
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        print(
            f"case {case_no}: not read from {_where(services)} ({reason}); `pingjia call` "
            "reads the database PINGJIA_DATABASE_URL names: give it the server's"
        )
        return
    adopted = next((r for r in evaluation.ratings if r.adopted), None)
    if adopted is None:
        print(f"case {case_no}: {evaluation.status} (no rating)")
        return
    label = services.profile.label(adopted.level)
    print(
        f"case {case_no}: {evaluation.status}, {label} (level {adopted.level}) via "
        f"{adopted.channel}, tags {adopted.tags or '-'}, voice {adopted.voice_ref or '-'}"
    )
    async with services.sessions() as session:
        tickets: list[Ticket] = list(await Repository(session).tickets_for_case(evaluation.case_id))
    for ticket in tickets:
        print(f"  ticket {ticket.ticket_no} ({ticket.status}), deadlines {ticket.deadlines}")


def _where(services: Services) -> str:
    return services.engine.url.render_as_string(hide_password=True)


COMMANDS = ("call", "prompts")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`pingjia call` and `pingjia prompts build`."""
    phone = commands.add_parser(
        "call",
        help="call the running FastAGI server from the console, as Asterisk would",
        description=(
            "A console softphone: connects to `pingjia serve`'s FastAGI port, shows each "
            "prompt, sends your keys, and prints the rating that was stored."
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
    phone.add_argument("-v", "--verbose", action="store_true", help="show every AGI line")
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
    prompts = commands.add_parser("prompts", help="voice prompts")
    actions = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    built = actions.add_parser(
        "build",
        help="synthesize missing prompts and normalize all of them into prompts/audio",
        description="espeak-ng (pinyin) for prompts without a recording; 8 kHz mono WAV.",
    )
    built.add_argument("--force", action="store_true", help="rebuild every prompt")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "prompts":
        try:
            report = build_prompts(settings, force=args.force)
        except catalog.PromptError as exc:
            print(f"pingjia prompts build: {exc}", file=sys.stderr)
            return 1
        print(
            f"prompts: {len(report.built)} built, {len(report.kept)} up to date, "
            f"formats {', '.join(report.formats)}, in {catalog.AUDIO}"
        )
        return 0
    if args.keys is not None:
        try:
            parse_keys(args.keys)
        except ValueError as exc:
            print(f"pingjia call: {exc}", file=sys.stderr)
            return 2
    host = args.host or ("127.0.0.1" if settings.bind in ("0.0.0.0", "::") else settings.bind)
    return asyncio.run(
        call(
            settings,
            case_nos=list(args.case),
            keys=args.keys,
            host=host,
            port=args.port or settings.agi_port,
            caller_id=args.caller_id,
            script=args.script,
            verbose=args.verbose,
            missing_sounds=list(args.missing_sound),
            recordings_folder_exists=not args.no_recordings_folder,
        )
    )
