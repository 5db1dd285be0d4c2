"""Menus sized for a phone: the built prompts' lengths held to what docs/ivr.md promises.

The flows' own step tables are walked with a scripted channel that keeps a virtual clock (each
prompt takes its built length from prompts/audio/manifest.json, each wait its whole timeout,
a recording its whole limit), no socket and no database; the caller takes the longest way that
still ends in a rating: silent through the greeting and every menu until the last try, then
silent through every reason menu and the voice offer, then the longest message.

Bad inputs tried here: silence at every menu (the reason menu is said twice, not three times),
and a level key while the case check is still running on an already-rated case (the answer
comes before any reason menu).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ivr.flows import rating, survey
from ivr.flows.base import RatingCall, reason_menu
from ivr.flows.cases import CallCases
from prompts.catalog import load_manifest
from rating.policy.loader import load_profile
from rating.policy.profile import Profile

DOC = Path(__file__).resolve().parent.parent / "docs" / "ivr.md"
REASON_MENU_LIMIT_S = 15.0
BEEP_S = 0.5  # Asterisk's core beep, before RECORD FILE starts


class ClockChannel:
    """A channel that plays nothing: it adds up the time each command would take."""

    def __init__(self, lengths: dict[str, float], keys: list[str | None]) -> None:
        self.lengths = lengths
        self.keys = keys  # what each wait_for_digit gets, in order; None: silence
        self.seconds = 0.0
        self.played: list[str] = []
        self.env: dict[str, str] = {}
        self.uniqueid = "1.1"
        self.peer = ""

    async def stream_file(self, name: str, escape: str = "") -> str | None:
        prompt = name.rsplit("/", 1)[-1]
        self.played.append(prompt)
        self.seconds += self.lengths[prompt]
        return None  # the caller lets every prompt play to its end

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        self.seconds += timeout_ms / 1000  # a key at the last moment, or none
        return self.keys.pop(0) if self.keys else None

    async def record_file(
        self, path: str, fmt: str, escape: str, max_ms: int, *, beep: bool, silence_s: int
    ) -> Any:
        self.seconds += (BEEP_S if beep else 0) + max_ms / 1000
        return SimpleNamespace(ended_by="timeout", digit=None, endpos=max_ms * 8, problem=None)


def built_lengths(language: str) -> dict[str, float]:
    prompts = load_manifest()["prompts"][language]
    return {prompt_id: entry["duration_ms"] / 1000 for prompt_id, entry in prompts.items()}


def context(profile: Profile) -> Any:
    return SimpleNamespace(
        profile=profile,
        menu=lambda level: reason_menu(profile, level),
        prompt=lambda prompt_id: f"pingjia/{profile.prompt_language}/{prompt_id}",
        recordings_dir="/var/spool/asterisk/monitor/pingjia",
    )


async def walk(flow: Any, first: Any, profile: Profile, keys: list[str | None]) -> ClockChannel:
    """Walk a flow's steps until its rating is saved, then add the thank-you."""
    ch = ClockChannel(built_lengths(profile.prompt_language), keys)
    call = RatingCall(cases=CallCases(("C1",), "complaint", None), uniqueid=ch.uniqueid)
    ctx, step = context(profile), first
    while step is not flow.Step.SAVE:
        step = await flow.STEPS[step](call, ch, ctx)
    thanks = "rating_thanks" if flow is rating else "survey_thanks"
    ch.seconds += ch.lengths[thanks]
    ch.played.append(thanks)
    return ch


def longest_rating(profile: Profile) -> list[str | None]:
    """Silent until the last try at the level menu, then level 5 and silence ever after."""
    return [None] * (profile.ivr.max_tries - 1) + ["5"]


def documented_seconds() -> dict[tuple[str, str], int]:
    """The table in docs/ivr.md: | `flow` | profile | … | N s |."""
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|.*\| (\d+) s \|$", DOC.read_text("utf-8"), re.M)
    return {(flow, profile): int(seconds) for flow, profile, seconds in rows}


@pytest.mark.parametrize("name", ["taishan", "sanmenxia"])
def test_every_reason_menu_fits_on_a_phone(name: str) -> None:
    profile = load_profile(name)
    lengths = built_lengths(profile.prompt_language)
    for level in (4, 5):
        menu = reason_menu(profile, level)
        assert 0 < len(menu) <= 5
        seconds = lengths[rating.reasons_prompt(profile, level)]
        assert seconds <= REASON_MENU_LIMIT_S, f"{name} level {level}: {seconds} s"


@pytest.mark.parametrize("name", ["taishan", "sanmenxia"])
async def test_the_longest_calls_are_what_docs_ivr_md_says(name: str) -> None:
    profile = load_profile(name)
    documented = documented_seconds()
    ch = await walk(rating, rating.Step.GREETING, profile, longest_rating(profile))
    reasons = rating.reasons_prompt(profile, 5)
    assert ch.played.count(reasons) == rating.REASON_PLAYS == 2  # said once more, then on
    assert "rating_voice_offer" in ch.played
    # The doc's figure is the built prompts' total rounded up: never below, never stale.
    assert 0 <= documented[("rating", name)] - ch.seconds < 1, ch.played
    ch = await walk(survey, survey.Step.GREETING, profile, longest_rating(profile))
    assert 0 <= documented[("survey", name)] - ch.seconds < 1, ch.played


async def test_an_already_rated_case_is_said_right_after_the_level_key() -> None:
    """The case check still runs when the key comes: the flow waits for it, then answers."""
    profile = load_profile("taishan")
    call = RatingCall(cases=CallCases(("C1",), "complaint", None), uniqueid="1.1")

    async def slow_check() -> list[str]:
        await asyncio.sleep(0.05)
        return ["rated"]

    call.check = asyncio.ensure_future(slow_check())
    ch = ClockChannel(built_lengths("cmn"), [])
    step = rating._level_chosen(call, "4")
    assert step is rating.Step.LEVEL
    assert await rating.level(call, ch, context(profile)) is rating.Step.ALREADY
    assert ch.played == []  # no reason menu, no voice offer before 您已经评价过
