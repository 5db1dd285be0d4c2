"""The rating and survey flows end to end: simulated Asterisk -> FastAGI server -> database.

Runs on SQLite and PostgreSQL (the `services` fixture). Bad inputs tried: a wrong key, no key
at all, a hang-up at every step, a retried call (same agi_uniqueid), a case the case system
never registered, no case, a malformed case number, a caller ID that is not a phone number, a
database that fails the first write, a survey for an unknown case.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from asterisk_sim.caller import Event, Hang, Key, ScriptedCaller, Talk
from asterisk_sim.simulator import CallResult, Simulator
from asterisk_sim.softphone import prompt_sounds
from ivr.flows import IvrContext, runners
from ivr.recordings import VoiceRef
from ivr.server import AgiServer
from pingjia.composition import Services
from prompts.catalog import AUDIO
from rating.cases.models import Case, Rating
from rating.cases.registration import ServiceRecord
from rating.policy.profile import IvrSettings
from rating.ratings.service import RatingService
from rating.tickets.models import Ticket

SOUNDS = prompt_sounds(AUDIO)


def prompt_ms(prompt_id: str) -> int:
    samples = SOUNDS.samples(f"pingjia/cmn/{prompt_id}")
    assert samples is not None, prompt_id
    return samples // 8


async def serve(ratings: RatingService, services: Services, recordings: str = "") -> AgiServer:
    context = IvrContext(
        ratings=ratings, clock=services.clock, profile=ratings.profile, save_backoff_s=0.01
    )
    context.recordings_dir = recordings or context.recordings_dir
    server = AgiServer(runners(context))
    await server.start("127.0.0.1", 0)
    return server


@pytest.fixture
async def agi(services: Services) -> AsyncIterator[AgiServer]:
    server = await serve(services.ratings, services)
    yield server
    await server.close()


async def register(services: Services, *case_nos: str) -> None:
    for case_no in case_nos:
        record = ServiceRecord(
            case_no, "complaint", "13812345678", datetime(2026, 11, 20, 9, tzinfo=UTC)
        )
        await services.ratings.register(record, actor="test", now=services.clock())


async def dial(
    agi: AgiServer, events: Sequence[Event], script: str = "rating?case=C1", **env: str
) -> CallResult:
    simulator = Simulator(ScriptedCaller(events), SOUNDS)
    args = env.pop("args", "").split(",") if "args" in env else ()
    return await simulator.call("127.0.0.1", agi.port, script, args, **env)


async def count(services: Services, model: Any) -> int:
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def played(result: CallResult) -> list[str]:
    return [c.split()[2].rsplit("/", 1)[-1] for c in result.commands if c.startswith("STREAM")]


@pytest.mark.article("sanmenxia", 8)
@pytest.mark.article("taishan", 15)
@pytest.mark.article("taishan", 19)
async def test_bad_rating_with_a_reason_opens_a_ticket(services: Services, agi: AgiServer) -> None:
    await register(services, "C1")
    result = await dial(agi, [Key("4"), Key("1"), Key("#")])
    assert played(result) == [
        "rating_greeting",
        "reasons_taishan_4",
        "rating_voice_offer",
        "rating_thanks",
    ]
    assert result.commands[-1] == "HANGUP"
    evaluation = await services.ratings.evaluation("C1")
    assert evaluation.status == "rated"
    (rating,) = evaluation.ratings
    assert (rating.level, rating.channel, rating.tags) == (4, "ivr", ["staff_passive"])
    assert rating.source_ref == f"agi:{result.uniqueid}" and rating.voice_ref is None
    async with services.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
    assert ticket.tags == ["staff_passive"] and ticket.level == 4


async def test_no_key_leaves_the_evaluation_pending(services: Services, agi: AgiServer) -> None:
    await register(services, "C1")
    result = await dial(agi, [])
    assert sum(c.startswith("WAIT FOR DIGIT 6000") for c in result.commands) == 3
    assert played(result)[-1] == "rating_goodbye"
    assert (await services.ratings.evaluation("C1")).status == "pending"
    assert await count(services, Rating) == 0


async def test_wrong_key_gets_the_invalid_prompt_and_the_menu(
    services: Services, agi: AgiServer
) -> None:
    await register(services, "C1")
    result = await dial(agi, [Key("9"), Key("3")])
    assert played(result) == ["rating_greeting", "rating_invalid", "rating_menu", "rating_thanks"]
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 3


VOICE = "rating_voice_offer"


@pytest.mark.parametrize(
    ("name", "events", "level", "tags", "voice"),
    [
        ("during the greeting", [Hang(after_ms=100)], None, [], False),
        ("at the level menu", [Hang()], None, [], False),
        ("at the reason menu", [Key("4"), Hang()], 4, [], False),
        ("during the reason prompt", [Key("5"), Hang(after_ms=200)], 5, [], False),
        (
            "during the voice offer",
            [Key("4"), Key("2"), Hang(after_ms=300)],
            4,
            ["staff_unfamiliar"],
            False,
        ),
        (
            "while recording",
            [Key("4"), Key("1"), Talk(0), Hang(after_ms=-1)],
            4,
            ["staff_passive"],
            True,
        ),
        ("during the thank-you", [Key("2"), Hang(after_ms=100)], 2, [], False),
    ],
)
@pytest.mark.article("sanmenxia", 4)
@pytest.mark.article("taishan", 4)
async def test_hangup_at_any_step_keeps_what_was_given(
    services: Services,
    agi: AgiServer,
    name: str,
    events: list[Event],
    level: int | None,
    tags: list[str],
    voice: bool,
) -> None:
    await register(services, "C1")
    if voice:  # hang up five seconds into the message
        events = [Key("4"), Key("1"), Hang(after_ms=prompt_ms(VOICE) + 5000)]
    result = await dial(agi, events)
    assert result.hung_up, name
    evaluation = await services.ratings.evaluation("C1")
    if level is None:
        assert evaluation.status == "pending" and not evaluation.ratings
        return
    (rating,) = evaluation.ratings  # written once
    assert (rating.level, rating.tags) == (level, tags)
    assert (rating.voice_ref is not None) == voice
    assert await count(services, Ticket) == (1 if level >= 4 else 0)


async def test_voice_message_is_stored_with_the_rating(services: Services, agi: AgiServer) -> None:
    await register(services, "C1")
    result = await dial(agi, [Key("5"), Key("9"), Talk(4000)])
    record = next(c for c in result.commands if c.startswith("RECORD FILE"))
    assert record.endswith("wav # 60000 BEEP s=3")
    rating = (await services.ratings.evaluation("C1")).ratings[0]
    folder = "/var/spool/asterisk/monitor/pingjia"  # the Asterisk host is in name and ref
    assert rating.voice_ref == f"asterisk://127.0.0.1{folder}/127.0.0.1-{result.uniqueid}.wav"
    assert rating.tags == ["other_very_dissatisfied"]


async def test_voice_ref_points_at_the_recorded_file(services: Services, tmp_path: Path) -> None:
    server = await serve(services.ratings, services, str(tmp_path))
    await register(services, "C1")
    simulator = Simulator(
        ScriptedCaller([Key("4"), Key("1"), Talk(3000)]), SOUNDS, write_recordings=True
    )
    try:
        result = await simulator.call("127.0.0.1", server.port, "rating?case=C1")
    finally:
        await server.close()
    rating = (await services.ratings.evaluation("C1")).ratings[0]
    assert rating.voice_ref is not None
    where = VoiceRef.parse(rating.voice_ref)
    assert (where.host, where.path) == ("127.0.0.1", f"{tmp_path}/127.0.0.1-{result.uniqueid}.wav")
    with wave.open(where.path) as recorded:
        assert recorded.getnframes() == (3000 + 1000) * 8 and recorded.getframerate() == 8000


async def test_a_retried_call_rates_once(services: Services, agi: AgiServer) -> None:
    await register(services, "C1")
    await dial(agi, [Key("4"), Hang()], uniqueid="1700000000.7")

    async def greeting_in_real_time(line: str) -> None:
        if "rating_greeting" in line:  # the case check runs while the greeting plays
            await asyncio.sleep(0.2)

    again = await Simulator(
        ScriptedCaller([Key("1")]), SOUNDS, before_reply=greeting_in_real_time
    ).call("127.0.0.1", agi.port, "rating?case=C1", uniqueid="1700000000.7")
    assert played(again) == ["rating_greeting", "rating_already"]
    assert await count(services, Rating) == 1


@pytest.mark.article("taishan", 20)
async def test_batch_rates_every_case(services: Services, agi: AgiServer) -> None:
    await register(services, "C1", "C2")
    await dial(agi, [Key("4"), Key("3"), Key("#")], "rating?case=C1&case=C2+C3&case=bad%0Acase")
    for case_no in ("C1", "C2", "C3"):
        evaluation = await services.ratings.evaluation(case_no)
        assert evaluation.ratings[0].tags == ["extra_materials"], case_no
    assert await count(services, Ticket) == 3
    assert (await services.ratings.evaluation("C3")).case.source == "ivr"


async def test_call_without_a_case_rates_a_case_made_from_the_call(
    services: Services, agi: AgiServer
) -> None:
    known = await dial(agi, [Key("1")], "rating", agi_callerid="13812345678")
    unknown = await dial(agi, [Key("2")], "rating", args="C7,complaint,A017")
    made = await services.ratings.evaluation(f"IVR-{known.uniqueid}")
    assert made.case.phone_masked == "138****5678" and made.ratings[0].level == 1
    positional = await services.ratings.evaluation("C7")
    assert positional.case.phone_masked is None  # "unknown" is no phone
    assert (positional.case.kind, positional.case.agent_id) == ("complaint", "A017")
    assert unknown.commands[-1] == "HANGUP"
    assert await count(services, Case) == 2


async def test_confirm_step_lets_the_caller_rate_again(services: Services, agi: AgiServer) -> None:
    profile = services.profile.model_copy(update={"ivr": IvrSettings(confirm=True)})
    server = await serve(RatingService(services.sessions, profile, services.vault), services)
    await register(services, "C1")
    try:
        result = await dial(server, [Key("4"), Key("1"), Key("#"), Key("2"), Key("3"), Key("1")])
    finally:
        await server.close()
    assert "level_4" in played(result) and "level_3" in played(result)
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert (rating.level, rating.tags) == (3, [])


class FlakyRatings(RatingService):
    failures = 1

    async def rate(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database restarting")
        return await super().rate(*args, **kwargs)


async def test_a_failing_database_write_is_retried(services: Services) -> None:
    flaky = FlakyRatings(services.sessions, services.profile, services.vault)
    server = await serve(flaky, services)
    await register(services, "C1")
    try:
        result = await dial(server, [Key("2")])
    finally:
        await server.close()
    assert played(result)[-1] == "rating_thanks"
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 2


async def test_survey_rates_a_known_case(services: Services, agi: AgiServer) -> None:
    await register(services, "C1")
    result = await dial(agi, [Key("5")], "survey?case=C1")
    assert played(result) == ["survey_greeting", "survey_thanks"]
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 5
    missing = await dial(agi, [Key("5")], "survey?case=NOPE")
    assert played(missing) == ["survey_not_found"]
