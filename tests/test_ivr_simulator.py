"""The AGI simulator against transcripts written from Asterisk's behaviour, not from our server.

Each transcript below comes from ../shared/PLATFORM.md (the reply table, and the exchanges seen
on a real Asterisk 20.20.1); the test drives the simulator with raw command lines from a bare
socket, so the simulator cannot drift into agreeing with our own server.

Bad inputs tried: an unknown command, missing arguments (520 block), a non-numeric timeout, a
missing sound file, commands on a dead channel (511, and the ones still allowed), a key the
prompt does not listen for, a bad `--keys` string, a recording into a directory that does not
exist.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest

from asterisk_sim.caller import Event, Hang, Key, ScriptedCaller, SoundLibrary, Talk, parse_keys
from asterisk_sim.simulator import Simulator
from tests.fakes.asterisk_driver import raw_agi_server

ORDER = (
    "agi_network agi_network_script agi_request agi_channel agi_language agi_type agi_uniqueid "
    "agi_version agi_callerid agi_calleridname agi_callingpres agi_callingani2 agi_callington "
    "agi_callingtns agi_dnid agi_rdnis agi_context agi_extension agi_priority agi_enhanced "
    "agi_accountcode agi_threadid"
).split()


@pytest.fixture
def sounds(tmp_path: Path) -> SoundLibrary:
    # Asterisk's "beep" is 2000 samples at 8 kHz: `STREAM FILE beep ""` -> endpos=2000.
    with wave.open(str(tmp_path / "beep.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 2000)
    return SoundLibrary({}, default=tmp_path)


async def exchange(
    sounds: SoundLibrary,
    events: Sequence[Event],
    steps: Sequence[tuple[str, Sequence[str]]],
    *,
    late_hangup_line: bool = False,
    args: Sequence[str] = (),
    write_recordings: bool = False,
) -> list[tuple[str, str]]:
    """Run the simulator against raw commands; assert each reply; return the environment."""
    async with raw_agi_server() as (port, sessions):
        simulator = Simulator(
            ScriptedCaller(events),
            sounds,
            late_hangup_line=late_hangup_line,
            write_recordings=write_recordings,
        )
        call = asyncio.create_task(simulator.call("127.0.0.1", port, "rating?case=C1", args))
        session = await sessions.get()
        for command, expected in steps:
            assert await session.ask(command, len(expected)) == list(expected), command
        session.writer.close()
        await asyncio.wait_for(call, 5)
        return session.environment


async def test_environment_block_comes_in_asterisks_order(sounds: SoundLibrary) -> None:
    env = await exchange(sounds, [], [], args=["C9", "complaint"])
    names = [name for name, _ in env]
    assert names == [*ORDER, "agi_arg_1", "agi_arg_2"]
    values = dict(env)
    assert values["agi_network_script"] == "rating?case=C1"
    assert values["agi_callerid"] == values["agi_rdnis"] == "unknown"
    assert values["agi_language"] == "en" and values["agi_enhanced"] == "0.0"
    assert values["agi_arg_1"] == "C9"


async def test_replies_seen_on_a_real_asterisk(sounds: SoundLibrary) -> None:
    events = [Key("5"), Key("7"), Key("1"), Key("2"), Key("3"), Key("#")]
    events += [Key("4"), Key("2"), Key("9")]
    await exchange(
        sounds,
        events,
        [
            ("GET DATA beep 3000 1", ["200 result=5"]),
            ("WAIT FOR DIGIT 5000", ["200 result=55"]),
            ("GET DATA beep 5000 4", ["200 result=123"]),  # 1 2 3 #
            ("GET DATA beep 5000 2", ["200 result=42"]),  # 4 2, then 9 is left over
            ("WAIT FOR DIGIT 10", ["200 result=57"]),
            ("GET DATA beep 2000 1", ["200 result= (timeout)"]),
            ('STREAM FILE beep ""', ["200 result=0 endpos=2000"]),
            ('SAY DIGITS 12 ""', ["200 result=0"]),
            ("EXEC NoOp hello", ["200 result=0"]),
            ("EXEC NoSuchApp", ["200 result=-2"]),
            ('VERBOSE "rating done" 1', ["200 result=1"]),
            ("GET VARIABLE EXTEN", ["200 result=1 (s)"]),
            ("GET VARIABLE NOPE", ["200 result=0"]),
            ("SET VARIABLE X 1", ["200 result=1"]),
            ("NOSUCHCMD", ["510 Invalid or unknown command"]),
            ("answer", ["200 result=0"]),  # names match case-insensitively
        ],
    )


async def test_keys_barge_in_and_unlistened_keys_are_dropped(sounds: SoundLibrary) -> None:
    await exchange(
        sounds,
        [Key("9", after_ms=50), Key("3", after_ms=100), Key("#", after_ms=0)],
        [
            # 9 is dropped at 50 ms; 3 at 150 ms stops the prompt: endpos 150 ms * 8.
            ('STREAM FILE beep "123"', ["200 result=51 endpos=1200"]),
            ("GET DATA beep 1000 3", ["200 result="]),  # '#' first
            ("STREAM FILE nosuchfile 12", ["200 result=-1 endpos=0"]),
            ("GET DATA nosuchfile", ["200 result=-1"]),
        ],
    )


async def test_usage_block_and_bad_arguments(sounds: SoundLibrary) -> None:
    usage = [
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: STREAM FILE <filename> <escape digits> [sample offset]",
        "\tPlays a file; a key among the escape digits stops it.",
        "520 End of proper usage.",
    ]
    await exchange(
        sounds,
        [],
        [
            ("STREAM FILE beep", usage),  # both arguments are required
            ("WAIT FOR DIGIT soon", [usage[0], " Usage: WAIT FOR DIGIT <timeout>"]),
        ],
    )


async def test_hangup_gives_minus_one_then_the_hangup_line_then_511(sounds: SoundLibrary) -> None:
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    await exchange(
        sounds,
        [Hang()],
        [
            ("WAIT FOR DIGIT 5000", ["200 result=-1", "HANGUP"]),
            ('STREAM FILE beep ""', [dead]),
            ("ANSWER", [dead]),
            ("HANGUP", [dead]),
            ("GET VARIABLE EXTEN", ["200 result=1 (s)"]),  # still allowed
            ("VERBOSE bye 1", ["200 result=1"]),
            ("EXEC NoOp x", ["200 result=0"]),
        ],
    )


async def test_late_hangup_line_stands_in_front_of_the_next_reply(sounds: SoundLibrary) -> None:
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    await exchange(
        sounds,
        [Hang(after_ms=1000)],
        [
            ('STREAM FILE beep "1"', ["200 result=0 endpos=2000"]),  # 250 ms played
            ("WAIT FOR DIGIT 5000", ["200 result=-1"]),  # hang-up 750 ms in
            ("WAIT FOR DIGIT 5000", ["HANGUP", dead]),
        ],
        late_hangup_line=True,
    )


async def test_agisighup_no_suppresses_the_hangup_line(sounds: SoundLibrary) -> None:
    await exchange(
        sounds,
        [Hang()],
        [
            ("SET VARIABLE AGISIGHUP no", ["200 result=1"]),
            ("WAIT FOR DIGIT 100", ["200 result=-1"]),  # and no HANGUP line after it
            ("NOOP", ["200 result=0"]),
            ("ANSWER", ["511 Command Not Permitted on a dead channel or intercept routine"]),
        ],
    )


async def test_record_file_ends_by_key_silence_limit_or_hangup(sounds: SoundLibrary) -> None:
    await exchange(
        sounds,
        [Key("#", after_ms=3000), Talk(4000), Hang(after_ms=500)],
        [
            # The beep (250 ms) comes first: # at 3 s is 2.75 s into the recording.
            ('RECORD FILE /tmp/x wav "#" 60000 BEEP s=3', ["200 result=35 (dtmf) endpos=22000"]),
            # Silence's result is junk: what was left of the limit (60 s - 4 s - 3 s); the file
            # keeps 1 s of the silence (4 s + 1 s).
            ('RECORD FILE /tmp/x wav "#" 60000 s=3', ["200 result=53000 (timeout) endpos=40000"]),
            ('RECORD FILE /tmp/x wav "#" 1000', ["200 result=-1 (hangup) endpos=4000", "HANGUP"]),
        ],
    )


def test_parse_keys() -> None:
    assert parse_keys("4,1,#") == [Key("4"), Key("1"), Key("#")]
    assert parse_keys("5@0, h@200, t3000") == [Key("5", 0), Hang(200), Talk(3000)]
    with pytest.raises(ValueError, match="bad key 'x'"):
        parse_keys("4,x")


async def test_record_file_writes_an_8khz_wav_where_asterisk_would(
    sounds: SoundLibrary, tmp_path: Path
) -> None:
    target = tmp_path / "spool"
    target.mkdir()
    await exchange(
        sounds,
        [Talk(2500), Key("#", 700)],
        [
            (
                f"RECORD FILE {target}/call1 wav # 60000 s=3",
                ["200 result=54500 (timeout) endpos=28000"],
            ),
            (f"RECORD FILE {target}/call2 wav # 60000", ["200 result=35 (dtmf) endpos=5600"]),
            # res_agi answers (writefile) when ast_writefile() cannot create the file.
            (f"RECORD FILE {tmp_path}/nodir/call3 wav # 60000", ["200 result=-1 (writefile)"]),
        ],
        write_recordings=True,
    )
    for name, frames in (("call1.wav", 28000), ("call2.wav", 5600)):
        with wave.open(str(target / name)) as recorded:
            assert (recorded.getframerate(), recorded.getnchannels()) == (8000, 1)
            assert (recorded.getsampwidth(), recorded.getnframes()) == (2, frames)
    assert not (tmp_path / "nodir").exists()
