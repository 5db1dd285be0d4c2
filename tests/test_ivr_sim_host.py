"""The simulator's answers for a badly deployed or impatient Asterisk, byte for byte.

Transcripts from ../shared/PLATFORM.md ("RECORD FILE on a real Asterisk 20.20.1, as callers
meet it", "A missing prompt looks like a hang-up") and res_agi.c, driven from a bare socket
(not our server), so the simulator cannot drift into agreeing with our own channel code.

Bad replies tried: a key during the beep, a hang-up during the beep, no beep sound on the
host, a recordings folder that does not exist, a prompt missing on the host (with no HANGUP
line after its -1), silence ending a recording (a junk result), STAT() on files present and
absent, CHANNEL STATUS on a live and on a dead channel, GET FULL VARIABLE on a dead channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from asterisk_sim.caller import Event, Hang, Key, ScriptedCaller, Talk
from asterisk_sim.simulator import Simulator
from asterisk_sim.softphone import prompt_sounds
from prompts.catalog import AUDIO
from tests.fakes.asterisk_driver import raw_agi_server

SOUNDS = prompt_sounds(AUDIO)
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
RECORD = 'RECORD FILE /tmp/pingjia-sim/x wav "#" 60000 BEEP s=3'
GREETING = "pingjia/cmn/rating_greeting"


async def exchange(
    events: Sequence[Event], steps: Sequence[tuple[str, Sequence[str]]], **simulator: Any
) -> None:
    """Send each raw command; the lines read back must be exactly the expected ones."""
    async with raw_agi_server() as (port, sessions):
        sim = Simulator(ScriptedCaller(events), SOUNDS, **simulator)
        call = asyncio.create_task(sim.call("127.0.0.1", port, "rating?case=C1"))
        session = await sessions.get()
        for command, expected in steps:
            assert await session.ask(command, len(expected)) == list(expected), command
        session.writer.close()
        await asyncio.wait_for(call, 5)


async def test_a_key_during_the_beep_records_nothing_and_the_channel_stays_up() -> None:
    """A caller pressing # at once: the beep (250 ms) is cut at 100 ms, RECORD FILE answers the
    key's code with (randomerror) and endpos=0, no HANGUP line, the channel is still up."""
    await exchange(
        [Key("#", after_ms=100)],
        [
            (RECORD, ["200 result=35 (randomerror) endpos=0"]),
            ("CHANNEL STATUS", ["200 result=6"]),
        ],
    )


async def test_a_hangup_during_the_beep_is_minus_one_randomerror_then_hangup() -> None:
    """Hang-up 100 ms into the beep: -1 (randomerror), the HANGUP line, then 511 for CHANNEL
    STATUS (it is not among the commands a dead channel still runs)."""
    await exchange(
        [Hang(after_ms=100)],
        [
            (RECORD, ["200 result=-1 (randomerror) endpos=0", "HANGUP"]),
            ("CHANNEL STATUS", [DEAD]),
        ],
    )


async def test_no_beep_on_the_host_answers_like_a_hangup_but_the_channel_stays_up() -> None:
    """No core sounds: every RECORD FILE with BEEP answers -1 (randomerror) at once, with no
    HANGUP line; without BEEP the same recording works."""
    await exchange(
        [Talk(2000)],
        [
            (RECORD, ["200 result=-1 (randomerror) endpos=0"]),
            ("CHANNEL STATUS", ["200 result=6"]),
            ('STREAM FILE beep ""', ["200 result=-1 endpos=0"]),
            (
                'RECORD FILE /tmp/pingjia-sim/x wav "#" 60000 s=3',
                ["200 result=55000 (timeout) endpos=24000"],
            ),
        ],
        missing=["beep"],
    )


async def test_a_recordings_folder_that_does_not_exist_answers_writefile() -> None:
    """The beep plays out, then ast_writefile() fails: `200 result=-1 (writefile)` (no endpos),
    the channel stays up."""
    await exchange(
        [],
        [
            (RECORD, ["200 result=-1 (writefile)"]),
            ("CHANNEL STATUS", ["200 result=6"]),
        ],
        recordings_folder_exists=False,
    )


async def test_silence_ends_a_recording_with_a_junk_result() -> None:
    """The value seen on a real Asterisk: 6 s of speech, 3 s of silence, 60 s limit -> 50998
    (what the last ast_waitfor() left of the limit); endpos is the speech plus the 1 s of
    silence Asterisk keeps (it rewinds the file by the silence less one second)."""
    await exchange(
        [Talk(6002)],
        [(RECORD, ["200 result=50998 (timeout) endpos=56016"])],
    )


async def test_a_missing_prompt_is_minus_one_endpos_zero_with_no_hangup_line() -> None:
    """STREAM FILE and GET DATA of a sound the host lacks: -1 at once, nothing else; the next
    command still works (a real hang-up would be followed by HANGUP and 511)."""
    await exchange(
        [Key("3")],
        [
            (f"STREAM FILE {GREETING} 12345", ["200 result=-1 endpos=0"]),
            ("CHANNEL STATUS", ["200 result=6"]),
            (f"GET DATA {GREETING} 1000 1", ["200 result=-1"]),
            ("STREAM FILE pingjia/cmn/rating_menu 12345", ["200 result=0 endpos=" + _menu()]),
            ("WAIT FOR DIGIT 6000", ["200 result=51"]),
        ],
        missing=["rating_greeting"],
    )


def _menu() -> str:
    samples = SOUNDS.samples("pingjia/cmn/rating_menu")
    assert samples is not None
    return str(samples)


async def test_stat_tells_which_sounds_are_on_the_host_even_after_hangup() -> None:
    """GET FULL VARIABLE evaluates ${ASTDATADIR}, ${SYSTEMNAME} (empty when asterisk.conf sets
    none) and ${STAT(e,…)} for prompts (each built format) and core sounds, nested; it still
    answers on a hung-up channel, where CHANNEL STATUS gets 511."""
    sounds = "/var/lib/asterisk/sounds"
    await exchange(
        [Hang()],
        [
            ("WAIT FOR DIGIT 100", ["200 result=-1", "HANGUP"]),
            ("CHANNEL STATUS", [DEAD]),
            ("GET FULL VARIABLE ${ASTDATADIR}", ["200 result=1 (/var/lib/asterisk)"]),
            ("GET FULL VARIABLE ${SYSTEMNAME}", ["200 result=1 ()"]),
            (
                "GET FULL VARIABLE ${STAT(e,${ASTDATADIR}/sounds/pingjia/cmn/rating_menu.wav)}"
                f"${{STAT(e,{sounds}/pingjia/cmn/rating_menu.ulaw)}}"
                f"${{STAT(e,{sounds}/pingjia/cmn/rating_menu.sln16)}}",
                ["200 result=1 (110)"],  # wav and ulaw are built, sln16 never is
            ),
            (
                f"GET FULL VARIABLE ${{STAT(e,{sounds}/pingjia/cmn/rating_greeting.wav)}}"
                f"${{STAT(e,{sounds}/pingjia/cmn/no_such_prompt.wav)}}"
                f"${{STAT(e,{sounds}/en/beep.gsm)}}${{STAT(e,{sounds}/beep.gsm)}}",
                ["200 result=1 (0010)"],  # the greeting told missing; beep in sounds/en
            ),
        ],
        missing=["rating_greeting"],
    )
