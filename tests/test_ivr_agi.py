"""Our AGI layer over panoramisk: the wire format, the typed channel, the server's hazards.

Each panoramisk 1.4 hazard in ../shared/PLATFORM.md has a test here: a peer that closes before
the blank line (and one that never finishes it), a query string in the script, the unsolicited
HANGUP line in front of a reply, a multi-line 520 block, EOF in the middle of a command,
`(timeout)` and `result=-1` kept as meaning instead of error dicts, cancellation not swallowed.

Bad inputs tried: an HTTP request on the AGI port, a half environment block, a block that is
not AGI, an unknown script, no script, non-AGI reply lines, an argument with a line break.
"""

from __future__ import annotations

import asyncio
import gc
import re
import weakref
from typing import Any, cast

import pytest
import structlog

from asterisk_sim.caller import Key, ScriptedCaller, SoundLibrary
from asterisk_sim.simulator import Simulator
from ivr.agi import AgiError, Channel, Hangup, ScriptRequest, script_request
from ivr.agi.protocol import (
    ProtocolError,
    command_line,
    parse_environment,
    parse_reply,
    split_command,
)
from ivr.agi.watchdog import _watchdogs
from ivr.server import AgiServer


class FakeWriter:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data.decode())

    async def drain(self) -> None:
        return None

    def is_closing(self) -> bool:
        return False


def channel(*lines: str) -> tuple[Channel, FakeWriter]:
    reader = asyncio.StreamReader()
    reader.feed_data("".join(f"{line}\n" for line in lines).encode())
    writer = FakeWriter()
    return Channel(reader, cast(Any, writer), {"agi_uniqueid": "1.1"}), writer


def test_reply_lines_keep_their_meaning() -> None:
    assert parse_reply("200 result= (timeout)").result == ""
    assert parse_reply("200 result= (timeout)").data == "timeout"
    dtmf = parse_reply("200 result=35 (dtmf) endpos=24000")
    assert (dtmf.number, dtmf.data, dtmf.endpos) == (35, "dtmf", 24000)
    assert parse_reply("200 result=-1 endpos=0").number == -1
    assert parse_reply("200 result=1 (a (nested) value)").data == "a (nested) value"
    assert parse_reply("510 Invalid or unknown command").code == 510
    for junk in ("HELLO", "200 nothing", "GET / HTTP/1.1"):
        with pytest.raises(ProtocolError):
            parse_reply(junk)


@pytest.mark.parametrize(
    "line",
    [
        "200 result=0",
        "200 result=53 (dtmf) endpos=1200",
        "200 result= (timeout)",
        "200 result=-1 endpos=0",
        "200 result=0 (timeout) endpos=32000",
        "200 result=1 (a (nested) value)",
        "200 result=",
        "200 result=abc",
        "200 result=1  (x)",
        "200 result=1 (x) ",
        "200 result=1 (x) endpos=",
    ],
)
def test_the_fast_reply_path_agrees_with_the_general_one(line: str, monkeypatch: Any) -> None:
    def outcome() -> object:
        try:
            return parse_reply(line)
        except ProtocolError as exc:
            return str(exc)

    fast = outcome()
    monkeypatch.setattr("ivr.agi.protocol._PLAIN_200", re.compile(r"(?!)"))  # never matches
    assert outcome() == fast


def test_quoting_round_trips_through_asterisks_word_splitting() -> None:
    line = command_line("STREAM", "FILE", "pingjia/cmn/x", "")
    assert line == 'STREAM FILE pingjia/cmn/x ""\n'
    tricky = 'say "hi" \\ there'
    assert split_command(command_line("VERBOSE", tricky, 1)) == ["VERBOSE", tricky, "1"]
    with pytest.raises(ValueError, match="line break"):
        command_line("VERBOSE", "two\nlines")


def test_script_request_drops_the_query_and_reads_cases() -> None:
    env = {"agi_network_script": "rating?case=C1&case=C2+C3&kind=complaint", "agi_arg_1": "X"}
    request = script_request(env)
    assert request.script == "rating"
    assert request.query["case"] == ["C1", "C2 C3"]  # `+` decodes to a blank
    assert request.args == ("X",)
    with pytest.raises(ProtocolError):
        parse_environment(b"GET / HTTP/1.1\nHost: x\n\n")


async def test_hangup_line_in_front_of_a_reply_is_skipped() -> None:
    ch, writer = channel("HANGUP", "200 result=0 endpos=8000", "200 result=1")
    assert await ch.stream_file("x", "12") is None
    assert ch.hung_up
    await ch.set_variable("A", "b")  # the next reply is not shifted by one
    assert writer.sent == ["STREAM FILE x 12\n", "SET VARIABLE A b\n"]


async def test_usage_block_is_read_whole() -> None:
    ch, _ = channel(
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: WAIT FOR DIGIT <timeout>",
        "\tWaits up to timeout ms.",
        "520 End of proper usage.",
        "200 result=0",
    )
    with pytest.raises(AgiError, match="Usage: WAIT FOR DIGIT"):
        await ch.wait_for_digit(10)
    assert await ch.wait_for_digit(10) is None


async def test_eof_dead_channel_and_minus_one_raise_hangup() -> None:
    ch, _ = channel()
    ch.reader.feed_data(b"200 resu")  # the socket closes in the middle of a reply
    ch.reader.feed_eof()
    with pytest.raises(Hangup, match="closed"):
        await ch.wait_for_digit(10)
    ch, _ = channel("511 Command Not Permitted on a dead channel or intercept routine")
    with pytest.raises(Hangup):
        await ch.stream_file("x")
    # -1, then the channel found dead (the HANGUP line, 511 to CHANNEL STATUS): a hang-up.
    ch, writer = channel(
        "200 result=-1",
        "HANGUP",
        "511 Command Not Permitted on a dead channel or intercept routine",
        "200 result= (timeout)",
        "510 Invalid or unknown command",
    )
    with pytest.raises(Hangup):
        await ch.get_data("x", 100, 1)
    assert writer.sent[-1] == "CHANNEL STATUS\n" and ch.hung_up
    assert (await ch.get_data("x", 100, 1)).timed_out
    with pytest.raises(AgiError, match="does not know"):
        await ch.verbose("x")


async def test_a_reply_that_never_comes_ends_the_call_as_a_hangup() -> None:
    ch, writer = channel()
    ch.grace_s = 0.2
    started = asyncio.get_running_loop().time()
    with pytest.raises(Hangup, match="no reply from Asterisk in 0 s"):
        await ch.wait_for_digit(100)
    took = asyncio.get_running_loop().time() - started
    assert 0.3 <= took < 2.0  # its limit (0.1 s + 0.2 s grace), seen by a 0.5 s watchdog
    assert writer.sent == ["WAIT FOR DIGIT 100\n"]
    # A reply inside its time is read as usual, and nothing is left watched.
    ok, _ = channel()
    ok.grace_s = 0.2
    later = asyncio.get_running_loop().call_later(0.1, ok.reader.feed_data, b"200 result=49\n")
    assert await ok.wait_for_digit(100) == "1"
    later.cancel()
    from ivr.agi.watchdog import _watchdog

    assert ch not in _watchdog().waiting and ok not in _watchdog().waiting


def test_the_watchdog_keeps_no_event_loop_alive() -> None:
    """One watchdog per loop, in a registry keyed weakly by loop: a loop that ran channels and
    closed (one per test here) must be collectable, its pending tick included."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one_read() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        ch, _ = channel("200 result=0")
        assert await ch.wait_for_digit(10) is None
        assert asyncio.get_running_loop() in _watchdogs

    for _ in range(3):
        asyncio.run(one_read())
    gc.collect()
    assert [loop() for loop in loops] == [None, None, None]


async def echo_flow(channel: Channel, request: ScriptRequest) -> None:
    key = await channel.wait_for_digit(1000)
    await channel.verbose(f"{request.script} {request.first('case')} {key}")
    await channel.hangup()


async def stuck_flow(channel: Channel, request: ScriptRequest) -> None:
    await asyncio.sleep(3600)


@pytest.fixture
async def server() -> Any:
    agi = AgiServer({"rating": echo_flow, "stuck": stuck_flow}, header_timeout=0.3)
    await agi.start("127.0.0.1", 0)
    yield agi
    await agi.close(grace=0.2)


async def call(agi: AgiServer, script: str, *keys: str) -> list[str]:
    sim = Simulator(ScriptedCaller(Key(k) for k in keys), SoundLibrary({}))
    result = await asyncio.wait_for(sim.call("127.0.0.1", agi.port, script), 5)
    return result.commands


async def test_query_string_routes_to_the_script(server: AgiServer) -> None:
    assert await call(server, "rating?case=C1&kind=x", "4") == [
        "WAIT FOR DIGIT 1000",
        'VERBOSE "rating C1 4" 1',
        "HANGUP",
    ]


async def test_unknown_or_missing_script_is_a_clean_hangup(server: AgiServer) -> None:
    with structlog.testing.capture_logs() as logs:
        assert await call(server, "nosuch?x=1") == ["HANGUP"]
        assert await call(server, "") == ["HANGUP"]
    unknown = [e for e in logs if e["event"] == "agi script unknown; hanging up"]
    assert unknown[0]["script"] == "nosuch" and "rating" in unknown[0]["known"]


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"agi_network: yes\nagi_req", b"\x00\xff\n\n", b""],
)
async def test_garbage_is_logged_and_the_next_call_works(server: AgiServer, garbage: bytes) -> None:
    with structlog.testing.capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(garbage)
        await writer.drain()
        if garbage.endswith(b"req"):
            writer.close()  # the peer that closes before the blank line
        assert await asyncio.wait_for(reader.read(), 2) == b""  # the server closed it
        writer.close()
        # A second bad peer that stays silent must not freeze the server either.
        _, silent = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await call(server, "rating?case=C2", "1"))[-1] == "HANGUP"
        silent.close()
    assert any(e["event"] == "agi connection rejected" for e in logs)
    assert server.rejected >= 1


async def test_close_cancels_stuck_calls_instead_of_swallowing(server: AgiServer) -> None:
    sim = Simulator(ScriptedCaller([]), SoundLibrary({}))
    task = asyncio.create_task(sim.call("127.0.0.1", server.port, "stuck"))
    while not server.active:  # noqa: ASYNC110 (the server has no event for this)
        await asyncio.sleep(0.01)
    await server.close(grace=0.1)
    assert not server.active
    assert (await asyncio.wait_for(task, 2)).closed_by_server
