"""The hourly prompt check on the Asterisk host, the recordings' names, and the channel's
reading of every RECORD FILE reply.

Bad inputs tried: prompts and the core beep missing on the host, a second call within the
hour (no second check), an Asterisk whose STAT() answers nothing (func_env not loaded), a
session closed under the check, a voice_ref that is neither form, an IPv6 Asterisk, a
uniqueid with characters a file name should not hold; RECORD FILE's (dtmf), (timeout) with
junk, (hangup), (randomerror) with a key / dead / alive, (writefile), (waitfor), bare -1.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import structlog

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import CallResult, Simulator
from asterisk_sim.softphone import prompt_sounds
from ivr.agi.channel import Channel
from ivr.prompt_check import PromptCheck
from ivr.recordings import VoiceRef, recording_path
from ivr.server import AgiServer
from prompts.catalog import AUDIO
from tests.test_ivr_agi import FakeWriter

SOUNDS = prompt_sounds(AUDIO)
SOUND_NAMES = ["pingjia/cmn/rating_greeting", "pingjia/cmn/rating_menu", "beep"]


async def rate(channel: Channel, request: object) -> None:
    await channel.stream_file("pingjia/cmn/rating_menu", "12345")
    await channel.hangup()


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_check_runs_after_the_first_call_and_then_hourly() -> None:
    """First call: after its HANGUP, one GET FULL VARIABLE for ${ASTDATADIR} and one for the
    STATs; one ERROR line lists the missing sounds. A second call within the hour asks
    nothing; an hour later it asks again."""
    clock = Clock()
    check = PromptCheck(SOUND_NAMES, clock=clock)
    server = AgiServer({"rating": rate}, prompt_check=check)
    await server.start("127.0.0.1", 0)

    async def call(*missing: str) -> CallResult:
        sim = Simulator(ScriptedCaller([Key("1")]), SOUNDS, missing=missing)
        return await sim.call("127.0.0.1", server.port, "rating")

    try:
        with structlog.testing.capture_logs() as logs:
            first = await call("rating_greeting", "beep")
            second = await call()
            clock.now += 3601
            third = await call()
    finally:
        await server.close()
    asks = [c for c in first.commands if c.startswith("GET FULL VARIABLE")]
    assert first.commands[:2] == ["STREAM FILE pingjia/cmn/rating_menu 12345", "HANGUP"]
    assert asks[0] == "GET FULL VARIABLE ${ASTDATADIR}" and len(asks) == 2
    assert "${STAT(e,/var/lib/asterisk/sounds/pingjia/cmn/rating_greeting.wav)}" in asks[1]
    assert "${STAT(e,/var/lib/asterisk/sounds/en/beep.gsm)}" in asks[1]
    assert second.commands == first.commands[:2]
    assert len(third.commands) == 4
    missing = [e for e in logs if e["log_level"] == "error"]
    assert [e["missing"] for e in missing] == ["pingjia/cmn/rating_greeting, beep"]
    assert missing[0]["asterisk"] == "127.0.0.1"
    assert check.last["127.0.0.1"] == []  # the third call's host had everything


def channel(*lines: str, peer: str = "10.0.0.5") -> tuple[Channel, FakeWriter]:
    reader = asyncio.StreamReader()
    reader.feed_data("".join(f"{line}\n" for line in lines).encode())
    writer = FakeWriter()
    env = {"agi_uniqueid": "1.1", "agi_language": "en"}
    return Channel(reader, cast(Any, writer), env, peer=peer), writer


async def test_a_stat_that_answers_nothing_skips_the_check_with_a_warning() -> None:
    """func_env not loaded: ${STAT()} expands to nothing; the check says so, blames nobody."""
    ch, _ = channel("200 result=1 (/usr/share/asterisk)", "200 result=1 ()")
    with structlog.testing.capture_logs() as logs:
        assert await PromptCheck(SOUND_NAMES).run(ch) is None
    assert [e["log_level"] for e in logs] == ["warning"] and "func_env" in logs[0]["event"]


async def test_a_session_closed_under_the_check_postpones_it() -> None:
    """AGIEXITONHANGUP=yes closes the session after HANGUP: the check is tried again later."""
    clock = Clock()
    check = PromptCheck(SOUND_NAMES, clock=clock)
    ch, _ = channel()
    ch.reader.feed_eof()
    assert check.due("10.0.0.5")
    assert await check.run(ch) is None
    assert not check.due("10.0.0.5")
    clock.now += 61
    assert check.due("10.0.0.5") and not check.due("10.0.0.5")


def test_the_asterisk_host_is_the_peer_address_ipv4_mapped_or_not() -> None:
    """A dual-stack listener sees `::ffff:10.0.0.5`: named as 10.0.0.5; IPv6 stays; a socket
    without an address (a Unix socket) gives no host."""
    from ivr.server import _peer_host

    assert _peer_host(("::ffff:10.0.0.5", 40000, 0, 0)) == "10.0.0.5"
    assert _peer_host(("10.0.0.5", 40000)) == "10.0.0.5"
    assert _peer_host(("fd00::5", 40000, 0, 0)) == "fd00::5"
    assert _peer_host(None) == _peer_host("") == ""


def test_voice_refs_name_the_host_and_read_old_plain_paths() -> None:
    """New refs round-trip with the host (IPv6 in brackets); old plain paths read as no host."""
    path = recording_path("/var/spool/asterisk/monitor/pingjia/", "10.0.0.5", "pbx1-17.0/x")
    assert path == "/var/spool/asterisk/monitor/pingjia/10.0.0.5-pbx1-17.0_x"
    ref = VoiceRef("10.0.0.5", f"{path}.wav")
    assert str(ref) == f"asterisk://10.0.0.5{path}.wav" and VoiceRef.parse(str(ref)) == ref
    six = VoiceRef("fd00::5", "/rec/a.wav")
    assert str(six) == "asterisk://[fd00::5]/rec/a.wav" and VoiceRef.parse(str(six)) == six
    assert VoiceRef.parse("/rec/1.wav") == VoiceRef(None, "/rec/1.wav")
    assert recording_path("/rec", "", "1.2") == "/rec/1.2"
    for bad in ("asterisk://", "asterisk://host", "asterisk://[::1]rec.wav"):
        with pytest.raises(ValueError, match="not a voice_ref"):
            VoiceRef.parse(bad)


DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


@pytest.mark.parametrize(
    ("lines", "ended_by", "digit", "endpos", "problem"),
    [
        (["200 result=35 (dtmf) endpos=24000"], "dtmf", "#", 24000, None),
        (["200 result=50998 (timeout) endpos=48016"], "timeout", None, 48016, None),
        (["200 result=-1 (hangup) endpos=4000", "HANGUP"], "hangup", None, 4000, None),
        (["200 result=35 (randomerror) endpos=0"], "skipped", "#", 0, None),
        (["200 result=-1 (randomerror) endpos=0", "HANGUP", DEAD], "hangup", None, 0, None),
        (["200 result=-1 (randomerror) endpos=0", DEAD], "hangup", None, 0, None),  # AGISIGHUP=no
        (["200 result=-1 (randomerror) endpos=0", "200 result=6"], "failed", None, 0, "beep"),
        (["200 result=-1 (writefile)", "200 result=6"], "failed", None, 0, "writefile"),
        # A probe refused (510) was still answered: the channel is up.
        (
            ["200 result=-1 (writefile)", "510 Invalid or unknown command"],
            "failed",
            None,
            0,
            "writefile",
        ),
        (["200 result=-1 (waitfor) endpos=800", "200 result=6"], "failed", None, 0, "waitfor"),
        (["200 result=-1", "200 result=6"], "failed", None, 0, "error"),
        (["200 result=-1", DEAD], "hangup", None, 0, None),
    ],
)
async def test_every_record_file_reply_is_read(
    lines: list[str], ended_by: str, digit: str | None, endpos: int, problem: str | None
) -> None:
    """Each reply res_agi's handle_recordfile can give, with the probe's answer after a -1."""
    ch, writer = channel(*lines)
    taken = await ch.record_file("/rec/x", "wav", "#", 60000, beep=True, silence_s=3)
    assert (taken.ended_by, taken.digit, taken.endpos, taken.problem) == (
        ended_by,
        digit,
        endpos,
        problem,
    )
    # Only a -1 that may be a live channel is probed (one CHANNEL STATUS); (hangup) is not.
    probed = "result=-1" in lines[0] and "(hangup)" not in lines[0]
    assert writer.sent[1:] == (["CHANNEL STATUS\n"] if probed else [])
    assert ch.hung_up == (ended_by == "hangup")
