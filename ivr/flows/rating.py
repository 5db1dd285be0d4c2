"""The rating flow (script `rating`): level by keypad, reason menu, voice message, thank-you.

An explicit state machine: `Step` names the states, `STEPS` maps each to one async function
that does its AGI commands and returns the next step, so a test can walk it step by step.
The rating is written once: `Step.SAVE` starts the write, `Step.THANKS` plays over it; a hang-up
after the level starts it in `run`'s `finally` (docs/ivr.md: when, and why not earlier).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import structlog

from ivr.agi.channel import Hangup
from ivr.agi.protocol import ScriptRequest
from ivr.flows.base import ChannelLike, Flow, IvrContext
from ivr.flows.cases import (
    CallCases,
    case_nos_for,
    ensure_registered,
    requested_cases,
    save_rating,
)
from rating.profile import Profile, Tag

log = structlog.get_logger("pingjia.ivr")

LEVEL_KEYS = "12345"
MIN_VOICE_SAMPLES = 8000  # under one second at 8 kHz: the caller skipped the message
STATIC_PROMPTS = (
    "rating_greeting rating_menu rating_invalid rating_goodbye rating_voice_offer "
    "rating_thanks rating_already rating_confirm_intro rating_confirm_menu "
    "level_1 level_2 level_3 level_4 level_5"
).split()


class Step(Enum):
    START = "start"
    GREETING = "greeting"
    MENU = "menu"
    INVALID = "invalid"
    WAIT_LEVEL = "wait_level"
    REASON = "reason"
    REASON_INVALID = "reason_invalid"
    WAIT_REASON = "wait_reason"
    VOICE = "voice"
    RECORD = "record"
    CONFIRM = "confirm"
    SAVE = "save"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    ALREADY = "already"
    DONE = "done"


@dataclass
class RatingCall:
    """What the caller has given so far."""

    cases: CallCases
    uniqueid: str
    level: int | None = None
    tags: list[str] = field(default_factory=list)
    voice_ref: str | None = None
    tries: int = 0
    saved: bool = False
    write: asyncio.Task[None] | None = None  # the rating's write, overlapping the thank-you
    registered: bool = False  # START registered the cases: SAVE need not look again
    stored: int = 0  # how many cases the saved rating reached


def menu_tags(profile: Profile, level: int) -> dict[str, Tag]:
    """The reason menu of a level: keypad digit -> tag (tags without a digit are web-only)."""
    return {str(t.digit): t for t in profile.tags_for(level) if t.digit is not None}


def reasons_prompt(profile: Profile, level: int) -> str:
    return f"reasons_{profile.name}_{level}"


def prompts(profile: Profile) -> dict[str, str | None]:
    """Every prompt this flow plays with `profile`; reason menus are written from its tags."""
    needed: dict[str, str | None] = dict.fromkeys(STATIC_PROMPTS)
    for level in LEVEL_KEYS:
        tags = menu_tags(profile, int(level))
        if tags:
            choices = "；".join(f"{t.text}，请按{d}" for d, t in sorted(tags.items()))
            needed[reasons_prompt(profile, int(level))] = f"请选择原因：{choices}。"
    return needed


Handler = Callable[[RatingCall, ChannelLike, IvrContext], Awaitable[Step]]


async def start(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    try:
        case_nos = case_nos_for(call.cases, call.uniqueid)
        statuses = await ensure_registered(ctx, case_nos, call.cases, ch.env)
        call.registered = True
    except Exception as exc:  # the database may be down: rate anyway, SAVE retries
        log.warning("cases not checked at call start", error=str(exc)[:200])
        return Step.GREETING
    return Step.ALREADY if "pending" not in statuses else Step.GREETING


def _level_chosen(call: RatingCall, ctx: IvrContext, key: str) -> Step:
    call.level = int(key)
    call.tries = 0
    if menu_tags(ctx.profile, call.level):
        return Step.REASON
    return Step.CONFIRM if ctx.profile.ivr.confirm else Step.SAVE


async def greeting(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_greeting"), LEVEL_KEYS)
    return _level_chosen(call, ctx, key) if key else Step.WAIT_LEVEL


async def menu(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_menu"), LEVEL_KEYS)
    return _level_chosen(call, ctx, key) if key else Step.WAIT_LEVEL


async def invalid(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_invalid"), LEVEL_KEYS)
    return _level_chosen(call, ctx, key) if key else Step.MENU


async def wait_level(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.wait_for_digit(ctx.profile.ivr.key_timeout_ms)
    if key is not None and key in LEVEL_KEYS:
        return _level_chosen(call, ctx, key)
    call.tries += 1
    if call.tries >= ctx.profile.ivr.max_tries:
        return Step.GOODBYE  # nothing given: the evaluation stays pending for SMS
    return Step.INVALID if key is not None else Step.MENU


def _reason_chosen(call: RatingCall, ctx: IvrContext, key: str) -> Step:
    assert call.level is not None
    call.tags = [menu_tags(ctx.profile, call.level)[key].code]
    return Step.VOICE


async def reason(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    assert call.level is not None
    digits = "".join(menu_tags(ctx.profile, call.level))
    key = await ch.stream_file(ctx.prompt(reasons_prompt(ctx.profile, call.level)), digits)
    return _reason_chosen(call, ctx, key) if key else Step.WAIT_REASON


async def reason_invalid(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    await ch.stream_file(ctx.prompt("rating_invalid"))
    return Step.REASON


async def wait_reason(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    assert call.level is not None
    key = await ch.wait_for_digit(ctx.profile.ivr.key_timeout_ms)
    if key is not None and key in menu_tags(ctx.profile, call.level):
        return _reason_chosen(call, ctx, key)
    call.tries += 1
    if call.tries >= ctx.profile.ivr.max_tries:
        return Step.VOICE  # the level stands without a reason
    return Step.REASON_INVALID if key is not None else Step.REASON


async def voice(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_voice_offer"), "#")
    if key == "#":
        return Step.CONFIRM if ctx.profile.ivr.confirm else Step.SAVE
    return Step.RECORD


def recording_path(ctx: IvrContext, uniqueid: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", uniqueid) or "call"
    return f"{ctx.recordings_dir}/{safe}"


async def record(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    path = recording_path(ctx, call.uniqueid)
    settings = ctx.profile.ivr
    taken = await ch.record_file(
        path,
        "wav",
        "#",
        settings.record_max_seconds * 1000,
        beep=True,
        silence_s=settings.record_silence_seconds,
    )
    if taken.endpos >= MIN_VOICE_SAMPLES:
        call.voice_ref = f"{path}.wav"
    if taken.ended_by == "hangup":
        raise Hangup("caller hung up while recording")
    return Step.CONFIRM if settings.confirm else Step.SAVE


async def confirm(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    assert call.level is not None
    key = (
        await ch.stream_file(ctx.prompt("rating_confirm_intro"), "12")
        or await ch.stream_file(ctx.prompt(f"level_{call.level}"), "12")
        or await ch.stream_file(ctx.prompt("rating_confirm_menu"), "12")
        or await ch.wait_for_digit(ctx.profile.ivr.key_timeout_ms)
    )
    if key == "2":  # rate again from the menu
        call.level, call.tags, call.voice_ref, call.tries = None, [], None, 0
        return Step.MENU
    return Step.SAVE  # 1, another key or silence: what was given stands


async def save(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    # The write runs while THANKS plays, so the database's time is not in any command's
    # turnaround; THANKS and `run` await it (shielded) before the call ends.
    _start_write(call, ch.env, ctx)
    return Step.THANKS


def _start_write(call: RatingCall, env: dict[str, str], ctx: IvrContext) -> None:
    if call.saved or call.level is None:
        return
    call.saved = True  # once, even if this write fails
    call.write = asyncio.create_task(_write(call, env, ctx))
    ctx.writes.add(call.write)
    call.write.add_done_callback(ctx.writes.discard)


async def _finish_write(call: RatingCall) -> None:
    if call.write is not None:
        # Shielded: a hang-up or a server shutting down must not cancel the write halfway.
        await asyncio.shield(call.write)


async def thanks(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    try:
        await ch.stream_file(ctx.prompt("rating_thanks"))
    finally:
        await _finish_write(call)
    await ch.hangup()
    return Step.DONE


async def _write(call: RatingCall, env: dict[str, str], ctx: IvrContext) -> None:
    assert call.level is not None
    outcomes = await save_rating(
        ctx,
        env,
        call.cases,
        level=call.level,
        tags=call.tags,
        voice_ref=call.voice_ref,
        register=not call.registered,
    )
    call.stored = len(outcomes)


def _closing(prompt_id: str) -> Handler:
    async def play_and_hang_up(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
        await ch.stream_file(ctx.prompt(prompt_id))
        await ch.hangup()
        return Step.DONE

    return play_and_hang_up


STEPS: dict[Step, Handler] = {
    Step.START: start,
    Step.GREETING: greeting,
    Step.MENU: menu,
    Step.INVALID: invalid,
    Step.WAIT_LEVEL: wait_level,
    Step.REASON: reason,
    Step.REASON_INVALID: reason_invalid,
    Step.WAIT_REASON: wait_reason,
    Step.VOICE: voice,
    Step.RECORD: record,
    Step.CONFIRM: confirm,
    Step.SAVE: save,
    Step.THANKS: thanks,
    Step.GOODBYE: _closing("rating_goodbye"),
    Step.ALREADY: _closing("rating_already"),
}


async def run(ch: ChannelLike, request: ScriptRequest, ctx: IvrContext) -> None:
    """Walk the steps until DONE; a hang-up at any step still saves the level given."""
    call = RatingCall(cases=requested_cases(request), uniqueid=ch.uniqueid)
    step = Step.START
    try:
        while step is not Step.DONE:
            step = await STEPS[step](call, ch, ctx)
    finally:
        _start_write(call, ch.env, ctx)  # a hang-up after the level keeps it
        await _finish_write(call)


FLOW = Flow(name="rating", run=run, prompts=prompts)
