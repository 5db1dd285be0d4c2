"""The survey flow (script `survey`): an outbound rating call (电话评价) placed through AMI.

The citizen answers a call pingjia asked Asterisk to place (ivr/ami.py); the dialplan hands it
here with `survey?case=CASE_NO`. Shorter than `rating`: the case must be known and pending, the
level is asked for, and a bad level's reason is gathered by the ticket's call-back instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import Enum

from ivr.agi.protocol import ScriptRequest
from ivr.flows.base import ChannelLike, Flow, IvrContext
from ivr.flows.cases import requested_cases, save_rating
from ivr.flows.rating import LEVEL_KEYS, RatingCall
from rating.errors import NotFound
from rating.profile import Profile

PROMPTS = "survey_greeting survey_thanks survey_goodbye survey_not_found rating_menu".split()
PROMPTS.append("rating_invalid")


class Step(Enum):
    START = "start"
    GREETING = "greeting"
    MENU = "menu"
    WAIT_LEVEL = "wait_level"
    SAVE = "save"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    NOT_FOUND = "not_found"
    DONE = "done"


Handler = Callable[[RatingCall, ChannelLike, IvrContext], Awaitable[Step]]


def prompts(profile: Profile) -> dict[str, str | None]:
    return dict.fromkeys(PROMPTS)


async def start(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    if len(call.cases.case_nos) != 1:
        return Step.NOT_FOUND  # an outbound call is placed for exactly one case
    try:
        evaluation = await ctx.ratings.evaluation(call.cases.case_nos[0])
    except NotFound:
        return Step.NOT_FOUND
    return Step.GREETING if evaluation.status == "pending" else Step.NOT_FOUND


async def greeting(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("survey_greeting"), LEVEL_KEYS)
    return _chosen(call, key) if key else Step.WAIT_LEVEL


async def menu(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("rating_menu"), LEVEL_KEYS)
    return _chosen(call, key) if key else Step.WAIT_LEVEL


def _chosen(call: RatingCall, key: str) -> Step:
    call.level = int(key)
    return Step.SAVE


async def wait_level(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.wait_for_digit(ctx.profile.ivr.key_timeout_ms)
    if key is not None and key in LEVEL_KEYS:
        return _chosen(call, key)
    call.tries += 1
    if call.tries >= ctx.profile.ivr.max_tries:
        return Step.GOODBYE
    if key is not None:
        await ch.stream_file(ctx.prompt("rating_invalid"))
    return Step.MENU


async def save(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    await _save(call, ch.env, ctx)
    return Step.THANKS


async def _save(call: RatingCall, env: dict[str, str], ctx: IvrContext) -> None:
    if call.saved or call.level is None:
        return
    call.saved = True
    outcomes = await save_rating(
        ctx, env, call.cases, level=call.level, tags=[], voice_ref=None, register=False
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
    Step.WAIT_LEVEL: wait_level,
    Step.SAVE: save,
    Step.THANKS: _closing("survey_thanks"),
    Step.GOODBYE: _closing("survey_goodbye"),
    Step.NOT_FOUND: _closing("survey_not_found"),
}


async def run(ch: ChannelLike, request: ScriptRequest, ctx: IvrContext) -> None:
    call = RatingCall(cases=requested_cases(request), uniqueid=ch.uniqueid)
    step = Step.START
    try:
        while step is not Step.DONE:
            step = await STEPS[step](call, ch, ctx)
    finally:
        if call.level is not None and not call.saved:
            await asyncio.shield(_save(call, ch.env, ctx))


FLOW = Flow(name="survey", run=run, prompts=prompts)
