"""The survey flow (script `survey`): an outbound rating call (电话评价) placed through AMI.

The citizen answers a call pingjia asked Asterisk to place (ivr/ami.py); the dialplan hands it
here with `survey?case=CASE_NO`. Shorter than `rating`: the case must be known and pending, the
level is asked for, and a bad level's reason is gathered by the ticket's call-back instead.
Its write overlaps the thank-you as in `rating`, HANGUP waits for its commit, and a write that
failed hears `rating_not_saved` (the shared helpers of ivr/flows/base.py).
"""

from __future__ import annotations

from enum import Enum

from ivr.agi.protocol import ScriptRequest
from ivr.agi.results import PROMPT_MISSING
from ivr.flows.base import (
    ChannelLike,
    Flow,
    Handler,
    IvrContext,
    RatingCall,
    closing,
    run_steps,
    start_write,
    thanking,
)
from ivr.flows.cases import requested_cases
from ivr.flows.rating import LEVEL_KEYS
from rating.errors import NotFound
from rating.policy.profile import Profile

PROMPTS = "survey_greeting survey_thanks survey_goodbye survey_not_found rating_menu".split()
PROMPTS += ["rating_invalid", "rating_not_saved"]


class Step(Enum):
    START = "start"
    GREETING = "greeting"
    MENU = "menu"
    WAIT_LEVEL = "wait_level"
    SAVE = "save"
    THANKS = "thanks"
    NOT_SAVED = "not_saved"
    GOODBYE = "goodbye"
    NOT_FOUND = "not_found"
    DONE = "done"


def prompts(profile: Profile) -> dict[str, str | None]:
    return dict.fromkeys(PROMPTS)


async def start(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    if len(call.cases.case_nos) != 1:
        return Step.NOT_FOUND  # an outbound call is placed for exactly one case
    try:
        async with ctx.database:
            evaluation = await ctx.ratings.evaluation(call.cases.case_nos[0])
    except NotFound:
        return Step.NOT_FOUND
    return Step.GREETING if evaluation.status == "pending" else Step.NOT_FOUND


async def greeting(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> Step:
    key = await ch.stream_file(ctx.prompt("survey_greeting"), LEVEL_KEYS)
    if key == PROMPT_MISSING:  # logged and counted by the channel: straight to the menu
        return Step.MENU
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
    start_write(call, ch.env, ctx)  # runs while the thank-you plays
    return Step.THANKS


STEPS: dict[Step, Handler[Step]] = {
    Step.START: start,
    Step.GREETING: greeting,
    Step.MENU: menu,
    Step.WAIT_LEVEL: wait_level,
    Step.SAVE: save,
    Step.THANKS: thanking("survey_thanks", Step.DONE, Step.NOT_SAVED),
    Step.NOT_SAVED: closing("rating_not_saved", Step.DONE),
    Step.GOODBYE: closing("survey_goodbye", Step.DONE),
    Step.NOT_FOUND: closing("survey_not_found", Step.DONE),
}


async def run(ch: ChannelLike, request: ScriptRequest, ctx: IvrContext) -> None:
    call = RatingCall(cases=requested_cases(request), uniqueid=ch.uniqueid)
    await run_steps(STEPS, Step.START, Step.DONE, call, ch, ctx)


FLOW = Flow(name="survey", run=run, prompts=prompts)
