"""A faithful stand-in for Asterisk's side of FastAGI, over TCP.

It connects to an AGI server as Asterisk does, sends the environment block in Asterisk's
order, answers each command with the reply Asterisk gives in that situation (results,
`endpos`, `(timeout)`, `510`, `511` on a dead channel, `520` usage blocks, the unsolicited
`HANGUP` line) and lets a `Caller` press keys or hang up at any point. The behaviour follows
../shared/PLATFORM.md; tests/test_ivr_simulator.py holds transcripts written from it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from asterisk_sim.caller import (
    ALL_DIGITS,
    SAMPLES_PER_MS,
    Caller,
    HangUp,
    Phase,
    Press,
    SoundLibrary,
    Speak,
)
from asterisk_sim.commands import (
    DEAD_REPLY,
    KNOWN_APPS,
    CallResult,
    allowed_dead,
    environment,
    lookup,
    usage_reply,
)
from asterisk_sim.host import SimHost
from asterisk_sim.record import RecordFile
from ivr.agi.protocol import split_command

__all__ = ["CallResult", "Simulator", "environment", "usage_reply"]  # their home: commands

_ids = itertools.count(1)


class Simulator(RecordFile):
    """One simulated Asterisk channel running AGI() against a server."""

    def __init__(
        self,
        caller: Caller,
        sounds: SoundLibrary,
        *,
        variables: dict[str, str] | None = None,
        late_hangup_line: bool = False,
        before_reply: Callable[[str], Awaitable[None]] | None = None,
        on_line: Callable[[str, str], None] | None = None,
        write_recordings: bool = False,
        missing: Iterable[str] = (),
        recordings_folder_exists: bool = True,
    ) -> None:
        self.caller = caller
        # The host's disk: its sounds (some told missing), its recordings folder.
        self.host = SimHost(
            sounds,
            missing=missing,
            write_recordings=write_recordings,
            recordings_folder_exists=recordings_folder_exists,
        )
        self.sounds = sounds
        self.variables = {"EXTEN": "s", "CONTEXT": "hotline-rating", **(variables or {})}
        self.late_hangup_line = late_hangup_line  # HANGUP lands in front of the next reply
        self.before_reply = before_reply
        self.on_line = on_line
        self.dead = False
        self._owed_hangup_line = False

    async def call(
        self,
        host: str,
        port: int,
        script: str,
        args: Sequence[str] = (),
        *,
        uniqueid: str | None = None,
        **env: str,
    ) -> CallResult:
        """Run one AGI session until the server closes it."""
        uniqueid = uniqueid or f"{int(time.time())}.{random.randrange(10**6)}{next(_ids)}"
        result = CallResult(uniqueid)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            block = "".join(
                f"{k}: {v}\n" for k, v in environment(host, port, script, args, uniqueid, **env)
            )
            await self._send(writer, result, block + "\n")
            await self._serve(reader, writer, result)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        result.hung_up = self.dead
        return result

    async def _send(self, writer: asyncio.StreamWriter, result: CallResult, text: str) -> None:
        for line in text.rstrip("\n").split("\n"):
            result.transcript.append((">", line))
            if self.on_line:
                self.on_line(">", line)
        writer.write(text.encode("utf-8"))
        await writer.drain()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, result: CallResult
    ) -> None:
        sent_at = time.perf_counter()
        while True:
            try:
                raw = await reader.readline()
            except ConnectionError:
                raw = b""
            if not raw.endswith(b"\n"):
                result.closed_by_server = True
                return
            result.turnaround_s.append(time.perf_counter() - sent_at)
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            result.transcript.append(("<", line))
            result.commands.append(line)
            if self.on_line:
                self.on_line("<", line)
            was_dead = self.dead
            reply = await self.execute(line)
            if self.before_reply is not None:
                await self.before_reply(line)
            text = reply + "\n"
            if self._owed_hangup_line:
                text = "HANGUP\n" + text
                self._owed_hangup_line = False
            if self.dead and not was_dead and self._sighup():
                if self.late_hangup_line:
                    self._owed_hangup_line = True
                else:
                    text += "HANGUP\n"
            try:
                await self._send(writer, result, text)
            except ConnectionError:
                result.closed_by_server = True
                return
            sent_at = time.perf_counter()

    def _sighup(self) -> bool:
        return self.variables.get("AGISIGHUP", "yes").lower() != "no"

    async def execute(self, line: str) -> str:
        """The reply Asterisk gives to one command line."""
        words = split_command(line)
        spec, args = lookup(words)
        if spec is None:
            return "510 Invalid or unknown command"
        if self.dead and not allowed_dead(spec.name):
            return DEAD_REPLY
        if not spec.arity_ok(len(args)) or not spec.args_ok(args):
            return usage_reply(spec)
        handler = getattr(self, "_" + spec.name.lower().replace(" ", "_"))
        reply: str = await handler(args)
        return reply

    async def _phase(self, phase: Phase) -> tuple[str, int]:
        """Run a phase: ("key", ms) / ("hangup", ms) / ("speak", ms) / ("end", ms)."""
        offset = 0
        while True:
            remaining = None if phase.duration_ms is None else phase.duration_ms - offset
            action = await self.caller.act(Phase(phase.kind, remaining, phase.accepts, phase.file))
            if action is None:
                return "end", phase.duration_ms or 0
            if isinstance(action, HangUp):
                self.dead = True
                return "hangup", offset + action.at_ms
            if isinstance(action, Speak):
                return "speak", action.ms
            assert isinstance(action, Press)
            offset += action.at_ms
            if action.digit in phase.accepts:
                self._digit = action.digit
                return "key", offset
            # Asterisk drops a key the command does not listen for; the phase goes on.

    _digit = ""

    async def _answer(self, args: list[str]) -> str:
        return "200 result=0"

    async def _stream_file(self, args: list[str]) -> str:
        name, escape = args[0], args[1]
        offset = int(args[2]) if len(args) > 2 else 0
        total = self.host.samples(name)
        if total is None:  # and the channel stays up: no HANGUP line follows
            return f"200 result=-1 endpos={offset}"
        start = min(offset, total)
        what, ms = await self._phase(Phase("play", (total - start) // SAMPLES_PER_MS, escape, name))
        if what == "key":
            return f"200 result={ord(self._digit)} endpos={start + ms * SAMPLES_PER_MS}"
        if what == "hangup":
            return f"200 result=-1 endpos={start + ms * SAMPLES_PER_MS}"
        return f"200 result=0 endpos={total}"

    async def _wait_for_digit(self, args: list[str]) -> str:
        limit = int(args[0])
        what, _ = await self._phase(Phase("wait", None if limit < 0 else limit, ALL_DIGITS))
        if what == "key":
            return f"200 result={ord(self._digit)}"
        return "200 result=-1" if what == "hangup" else "200 result=0"

    async def _get_data(self, args: list[str]) -> str:
        name = args[0]
        limit = int(args[1]) if len(args) > 1 else 0
        most = int(args[2]) if len(args) > 2 else 1024
        first, between = (limit, limit) if limit > 0 else (6000, 2000)
        total = self.host.samples(name)
        if total is None:
            return "200 result=-1"
        digits = ""
        what, _ = await self._phase(Phase("play", total // SAMPLES_PER_MS, ALL_DIGITS, name))
        if what == "end":
            what = "listen"  # the prompt played out: now the wait for the first key
        while True:
            if what == "hangup":
                return "200 result=-1"
            if what == "key":
                if self._digit == "#":
                    return f"200 result={digits}"
                digits += self._digit
                if len(digits) >= most:
                    return f"200 result={digits}"
            elif what == "end":
                return f"200 result={digits} (timeout)"
            wait = between if digits else first
            what, _ = await self._phase(Phase("wait", wait, ALL_DIGITS))

    async def _say_digits(self, args: list[str]) -> str:
        for _ in args[0]:
            what, _ms = await self._phase(Phase("play", 600, args[1], "digits"))
            if what == "key":
                return f"200 result={ord(self._digit)}"
            if what == "hangup":
                return "200 result=-1"
        return "200 result=0"

    async def _set_variable(self, args: list[str]) -> str:
        self.variables[args[0]] = args[1]
        return "200 result=1"

    async def _get_variable(self, args: list[str]) -> str:
        value = self.variables.get(args[0])
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def _get_full_variable(self, args: list[str]) -> str:
        return f"200 result=1 ({self.host.evaluate(args[0], self.variables)})"

    async def _channel_status(self, args: list[str]) -> str:
        # A dead channel never gets here (511); another channel's name is not known here.
        return "200 result=6" if not args else "200 result=-1"

    async def _verbose(self, args: list[str]) -> str:
        return "200 result=1"

    async def _noop(self, args: list[str]) -> str:
        return "200 result=0"

    async def _exec(self, args: list[str]) -> str:
        return "200 result=0" if args[0].lower() in KNOWN_APPS else "200 result=-2"

    async def _hangup(self, args: list[str]) -> str:
        self.dead = True
        return "200 result=1"
