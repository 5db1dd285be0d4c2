"""The rating flow (script `rating`): level by keypad, reason menu, voice message, thank-you.

An explicit state machine: `Step` names the states, `STEPS` maps each to one async function
that does its AGI commands and returns the next step, so a test can walk it step by step.
The case check (register unknown cases, read the statuses) runs while the greeting plays; the
rating is written once: `Step.SAVE` starts the write, `Step.THANKS` plays over it and sends
HANGUP once it has committed (a write that failed hears `rating_not_saved` instead); a hang-up
after the level starts it in `run_steps`'s `finally` (docs/ivr.md: when, and why not earlier).
"""

from __future__ import annotations

import asyncio
from enum import Enum

from ivr.agi.channel import Hangup
from ivr.agi.protocol import ScriptRequest
from ivr.agi.results import PROMPT_MISSING
from ivr.flows.base import (
    ChannelLike,
    Flow,
    Handler,
    IvrContext,
    RatingCall,
    awaiting_write,
    closing,
    reason_menu,
    run_steps,
    start_write,
    thanking,
)
from ivr.flows.cases import check_cases, requested_cases
from ivr.recordings import VoiceRef, recording_path
from rating.policy.profile import Profile

LEVEL_KEYS = "12345"
MIN_VOICE_SAMPLES = 8000  # under one second at 8 kHz: the caller skipped the message
# Asterisk keeps 1 s of the silence that ended a recording (it rewinds the rest): a caller who
# says nothing leaves a one-second file, which is no message.
SILENCE_KEPT_SAMPLES = 8000
REASON_PLAYS = 2  # a reason menu with no key is said once more, then the level stands alone
CHECK_WAIT_S = 2.0  # at the level key, how long the start-of-call case check may still take
STATIC_PROMPTS = (
    "rating_greeting rating_menu rating_invalid rating_goodbye rating_voice_offer "
    "rating_thanks rating_not_saved rating_already rating_confirm_intro rating_confirm_menu "
    "level_1 level_2 level_3 level_4 level_5"
).split()


class Step(Enum):
    GREETING = "greeting"
    MENU = "menu"
    INVALID = "invalid"
    WAIT_LEVEL = "wait_level"
    LEVEL = "level"
    REASON = "reason"
    REASON_INVALID = "reason_invalid"
    WAIT_REASON = "wait_reason"
    VOICE = "voice"
    RECORD = "record"
    CONFIRM = "confirm"
    SAVE = "save"
    WAIT_WRITE = "wait_write"
    THANKS = "thanks"
    NOT_SAVED = "not_saved"
    GOODBYE = "goodbye"
    ALREADY = "already"
    DONE = "done"


def reasons_prompt(profile: Profile, level: int) -> str:
    return f"reasons_{profile.name}_{level}"


def prompts(profile: Profile) -> dict[str, str | None]:
    """Every prompt this flow plays with `profile`; reason menus are written from its tags."""
    needed: dict[str, str | None] = dict.fromkeys(STATIC_PROMPTS)
    for level in LEVEL_KEYS:
        tags = reason_menu(profile, int(level))
        if tags:
            choices = "，".join(f"{t.spoken_label}请按{d}" for d, t in sorted(tags.items()))
            needed[reasons_prompt(profile, int(level))] = f"请选择原因：{choices}。"
    return needed


def _level_chosen(call: RatingCall, key: str) -> Step:
    call.level = int(key)
    call.tries = 0
    return Step.LEVEL


async def level(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    """After the level key: an already-rated case is said at once, before any reason menu.

    The case check started with the greeting; a caller who barges in may press the level
    before it answers, so it gets a short while more (usually milliseconds)."""
    assert call.level is not None
    if call.check is not None and not call.check.done():
        await asyncio.wait({call.check}, timeout=CHECK_WAIT_S)  # never cancels the check
    if call.already_rated():
        return Step.ALREADY
    if ctx.menu(call.level):
        return Step.REASON
    return Step.CONFIRM if ctx.profile.ivr.confirm else Step.SAVE


async def greeting(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_greeting"), LEVEL_KEYS)
    if key == PROMPT_MISSING:  # logged and counted by the channel: straight to the menu
        return Step.MENU
    return _level_chosen(call, key) if key else Step.WAIT_LEVEL


async def menu(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_menu"), LEVEL_KEYS)
    return _level_chosen(call, key) if key else Step.WAIT_LEVEL


async def invalid(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_invalid"), LEVEL_KEYS)
    return _level_chosen(call, key) if key else Step.MENU


async def wait_level(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.wait_for_digit(ctx.profile.ivr.key_timeout_ms)
    if key is not None and key in LEVEL_KEYS:
        return _level_chosen(call, key)
    call.tries += 1
    if call.tries >= ctx.profile.ivr.max_tries:
        return Step.GOODBYE  # nothing given: the evaluation stays pending for SMS
    return Step.INVALID if key is not None else Step.MENU


def _reason_chosen(call: RatingCall, ctx: IvrContext, key: str) -> Step:
    assert call.level is not None
    call.tags = [ctx.menu(call.level)[key].code]
    return Step.VOICE


async def reason(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    assert call.level is not None
    digits = "".join(ctx.menu(call.level))
    key = await ch.stream_file(ctx.prompt(reasons_prompt(ctx.profile, call.level)), digits)
    return _reason_chosen(call, ctx, key) if key else Step.WAIT_REASON


async def reason_invalid(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    await ch.stream_file(ctx.prompt("rating_invalid"))
    return Step.REASON


async def wait_reason(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    assert call.level is not None
    key = await ch.wait_for_digit(ctx.profile.ivr.key_timeout_ms)
    if key is not None and key in ctx.menu(call.level):
        return _reason_chosen(call, ctx, key)
    call.tries += 1
    if call.tries >= REASON_PLAYS:
        return Step.VOICE  # the level stands without a reason
    return Step.REASON_INVALID if key is not None else Step.REASON


async def voice(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_voice_offer"), "#")
    if key == "#" or key == PROMPT_MISSING:  # a caller never offered it is not recorded
        return Step.CONFIRM if ctx.profile.ivr.confirm else Step.SAVE
    return Step.RECORD


async def record(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    """Record after the beep; whatever Asterisk answers, the caller is thanked (a key during
    the beep skips the message; a missing beep or folder is logged by the channel)."""
    path = recording_path(ctx.recordings_dir, ch.peer, call.uniqueid)
    settings = ctx.profile.ivr
    taken = await ch.record_file(
        path,
        "wav",
        "#",
        settings.record_max_seconds * 1000,
        beep=True,
        silence_s=settings.record_silence_seconds,
    )
    spoken = taken.endpos - (SILENCE_KEPT_SAMPLES if taken.ended_by == "timeout" else 0)
    if taken.ended_by in ("dtmf", "timeout", "hangup") and spoken >= MIN_VOICE_SAMPLES:
        call.voice_ref = str(VoiceRef(ch.peer or None, f"{path}.wav"))
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
    if call.already_rated():  # found during the menus: the polite answer, nothing written
        return Step.ALREADY
    # The write runs while THANKS plays, so the database's time is in no command's
    # turnaround. A check still running (a database slower than the whole call so far) does
    # not hold the caller: the write awaits it and skips cases found rated.
    start_write(call, ch.env, ctx)
    if call.check_failed():  # the database was unreachable at call start: thank only once
        return Step.WAIT_WRITE  # the write (registering the cases, with its retries) is in
    return Step.THANKS


STEPS: dict[Step, Handler[Step]] = {
    Step.GREETING: greeting,
    Step.MENU: menu,
    Step.INVALID: invalid,
    Step.WAIT_LEVEL: wait_level,
    Step.LEVEL: level,
    Step.REASON: reason,
    Step.REASON_INVALID: reason_invalid,
    Step.WAIT_REASON: wait_reason,
    Step.VOICE: voice,
    Step.RECORD: record,
    Step.CONFIRM: confirm,
    Step.SAVE: save,
    Step.WAIT_WRITE: awaiting_write(Step.THANKS, Step.NOT_SAVED),
    Step.THANKS: thanking("rating_thanks", Step.DONE, Step.NOT_SAVED),
    Step.NOT_SAVED: closing("rating_not_saved", Step.DONE),
    Step.GOODBYE: closing("rating_goodbye", Step.DONE),
    Step.ALREADY: closing("rating_already", Step.DONE),
}


async def run(ch: ChannelLike, request: ScriptRequest, ctx: IvrContext) -> None:
    """Check the cases while the greeting plays, then walk the steps."""
    call = RatingCall(cases=requested_cases(request), uniqueid=ch.uniqueid)
    call.check = ctx.track(check_cases(ctx, call.cases, ch.env))
    await run_steps(STEPS, Step.GREETING, Step.DONE, call, ch, ctx)


FLOW = Flow(name="rating", run=run, prompts=prompts)
