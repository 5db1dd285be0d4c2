"""The voice-message step and missing prompts, as a real Asterisk 20 answers them, end to end:
simulated Asterisk -> FastAGI server (with `pingjia serve`'s metrics) -> database.

Bad replies tried: a key during the beep, a hang-up during the beep, no beep sound on the
host, a recordings folder that does not exist, silence's junk result, a missing greeting, a
missing voice offer, a missing survey greeting; the exact lines exchanged are checked where
they decide the outcome, and so are the log lines and /metrics counters an operator sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from asterisk_sim.caller import Event, Hang, Key, ScriptedCaller, Talk
from asterisk_sim.simulator import CallResult, Simulator
from asterisk_sim.softphone import prompt_sounds
from ivr.flows import IvrContext, runners
from ivr.server import AgiServer
from pingjia.composition import Services
from prompts.catalog import AUDIO
from rating.cases.registration import ServiceRecord
from tests.test_ivr_metrics import sample

SOUNDS = prompt_sounds(AUDIO)
VOICE_MS = (SOUNDS.samples("pingjia/cmn/rating_voice_offer") or 0) // 8
DURING_BEEP = Key("#", after_ms=VOICE_MS + 100)  # the beep plays 250 ms after the offer


@pytest.fixture
async def agi(services: Services) -> AsyncIterator[AgiServer]:
    context = IvrContext(
        ratings=services.ratings,
        clock=services.clock,
        profile=services.profile,
        save_backoff_s=0.01,
    )
    server = AgiServer(runners(context), observer=services.metrics.agi)
    await server.start("127.0.0.1", 0)
    record = ServiceRecord("C1", "complaint", None, datetime(2026, 11, 20, 9, tzinfo=UTC))
    await services.ratings.register(record, actor="test", now=services.clock())
    yield server
    await server.close()


async def dial(
    agi: AgiServer, events: Sequence[Event], script: str = "rating?case=C1", **host: Any
) -> tuple[CallResult, list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        result = await Simulator(ScriptedCaller(events), SOUNDS, **host).call(
            "127.0.0.1", agi.port, script
        )
    return result, logs


def reply_to(result: CallResult, prefix: str) -> str:
    """The line Asterisk answered to the first command starting with `prefix`."""
    lines = result.transcript
    index = next(i for i, (d, line) in enumerate(lines) if d == "<" and line.startswith(prefix))
    return lines[index + 1][1]


def played(result: CallResult) -> list[str]:
    return [c.split()[2].rsplit("/", 1)[-1] for c in result.commands if c.startswith("STREAM")]


def metrics(services: Services) -> str:
    return services.metrics.render().body.decode()  # type: ignore[union-attr]


def errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["log_level"] == "error"]


async def outcome(services: Services, name: str) -> float:
    return sample(
        metrics(services), "pingjia_agi_sessions_finished_total", script="rating", outcome=name
    )


async def test_a_key_during_the_beep_skips_the_message_and_thanks(
    services: Services, agi: AgiServer
) -> None:
    """`200 result=35 (randomerror) endpos=0`: no message, the thank-you plays, level and tag
    kept, no probe, no error."""
    result, logs = await dial(agi, [Key("4"), Key("1"), DURING_BEEP])
    assert reply_to(result, "RECORD FILE") == "200 result=35 (randomerror) endpos=0"
    assert played(result)[-1] == "rating_thanks" and result.commands[-1] == "HANGUP"
    assert not any(c.startswith("CHANNEL STATUS") for c in result.commands)
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert (rating.level, rating.tags, rating.voice_ref) == (4, ["staff_passive"], None)
    assert not errors(logs) and await outcome(services, "completed") == 1


async def test_a_hangup_during_the_beep_is_a_hangup_not_an_error(
    services: Services, agi: AgiServer
) -> None:
    """`200 result=-1 (randomerror) endpos=0` then HANGUP: CHANNEL STATUS gets 511, the session
    ends as a hang-up (INFO), level and tag kept."""
    result, logs = await dial(agi, [Key("5"), Key("2"), Hang(after_ms=VOICE_MS + 100)])
    assert reply_to(result, "RECORD FILE") == "200 result=-1 (randomerror) endpos=0"
    assert reply_to(result, "CHANNEL STATUS").startswith("511 ")
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert (rating.level, rating.tags, rating.voice_ref) == (5, ["staff_very_unfamiliar"], None)
    assert not errors(logs) and await outcome(services, "hangup") == 1
    assert any(e["event"] == "agi session ended by hang-up" for e in logs)


@pytest.mark.parametrize(
    ("host", "reply", "problem", "named"),
    [
        ({"missing": ["beep"]}, "200 result=-1 (randomerror) endpos=0", "beep", "sound"),
        ({"recordings_folder_exists": False}, "200 result=-1 (writefile)", "writefile", "folder"),
    ],
)
async def test_a_host_that_cannot_record_is_loud_and_the_caller_is_thanked(
    services: Services, agi: AgiServer, host: dict[str, Any], reply: str, problem: str, named: str
) -> None:
    """No beep sound / no recordings folder: an ERROR line naming the sound or the folder, the
    counter on /metrics, and the caller still hears the thank-you (call completed)."""
    result, logs = await dial(agi, [Key("4"), Key("3"), Talk(3000)], **host)
    assert reply_to(result, "RECORD FILE") == reply
    assert reply_to(result, "CHANNEL STATUS") == "200 result=6"
    assert played(result)[-1] == "rating_thanks" and result.commands[-1] == "HANGUP"
    (error,) = errors(logs)
    assert error["event"].startswith("voice message not recorded")
    expected = "beep" if named == "sound" else "/var/spool/asterisk/monitor/pingjia"
    assert error[named] == expected
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert (rating.level, rating.tags, rating.voice_ref) == (4, ["extra_materials"], None)
    text = metrics(services)
    assert sample(text, "pingjia_agi_recording_failures_total", problem=problem) == 1
    assert await outcome(services, "completed") == 1


async def test_silence_ends_the_message_normally_whatever_its_result(
    services: Services, agi: AgiServer
) -> None:
    """`200 result=<junk> (timeout)`: the message is kept and the call ends as usual."""
    result, logs = await dial(agi, [Key("5"), Key("9"), Talk(6002)])
    assert reply_to(result, "RECORD FILE") == "200 result=50998 (timeout) endpos=56016"
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert rating.voice_ref is not None and rating.voice_ref.endswith(f"-{result.uniqueid}.wav")
    assert not errors(logs) and await outcome(services, "completed") == 1


async def test_a_caller_who_says_nothing_leaves_no_message(
    services: Services, agi: AgiServer
) -> None:
    """Silence from the start: Asterisk keeps a one-second file (the silence it does not
    rewind), which is no message: no voice_ref."""
    result, logs = await dial(agi, [Key("4"), Key("2")])
    assert reply_to(result, "RECORD FILE") == "200 result=57000 (timeout) endpos=8000"
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert (rating.tags, rating.voice_ref) == (["staff_unfamiliar"], None)
    assert not errors(logs) and played(result)[-1] == "rating_thanks"


async def test_a_missing_greeting_still_lets_the_caller_rate_on_the_menu(
    services: Services, agi: AgiServer
) -> None:
    """The greeting answers -1 endpos=0 with no HANGUP: CHANNEL STATUS finds the channel up,
    an ERROR line and the counter name the prompt, and the menu plays at once."""
    result, logs = await dial(agi, [Key("2")], missing=["rating_greeting"])
    greeting = "STREAM FILE pingjia/cmn/rating_greeting 12345"
    assert result.commands[:3] == [greeting, "CHANNEL STATUS", result.commands[2]]
    assert reply_to(result, greeting) == "200 result=-1 endpos=0"
    assert played(result) == ["rating_greeting", "rating_menu", "rating_thanks"]
    (error,) = errors(logs)
    assert error["prompt"] == "pingjia/cmn/rating_greeting" and "missing" in error["event"]
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 2
    text = metrics(services)
    missing = "pingjia_agi_missing_prompts_total"
    assert sample(text, missing, prompt="pingjia/cmn/rating_greeting") == 1
    assert await outcome(services, "completed") == 1


async def test_a_missing_voice_offer_records_nobody(services: Services, agi: AgiServer) -> None:
    """A caller who never heard the offer is not recorded: straight to the thank-you."""
    result, _ = await dial(agi, [Key("4"), Key("1")], missing=["rating_voice_offer"])
    assert not any(c.startswith("RECORD FILE") for c in result.commands)
    assert played(result)[-2:] == ["rating_voice_offer", "rating_thanks"]
    assert (await services.ratings.evaluation("C1")).ratings[0].tags == ["staff_passive"]


async def test_a_missing_survey_greeting_goes_to_the_menu(
    services: Services, agi: AgiServer
) -> None:
    """The survey flow too: its greeting missing, the level menu plays and the rating counts."""
    result, _ = await dial(agi, [Key("1")], "survey?case=C1", missing=["survey_greeting"])
    assert played(result) == ["survey_greeting", "rating_menu", "survey_thanks"]
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 1
