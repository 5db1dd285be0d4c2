"""A typed AGI channel: one method per command, replies parsed, failures raised.

Flows talk to this class (or a fake with the same methods), never to raw lines. It reads the
replies itself instead of panoramisk's `send_command`, because Asterisk's unsolicited `HANGUP`
line, 520 usage blocks and a socket closed mid-command all break that parser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from ivr.agi.protocol import (
    DEAD_CHANNEL,
    HANGUP_LINE,
    INVALID_COMMAND,
    USAGE,
    ProtocolError,
    Reply,
    command_line,
    parse_reply,
)
from ivr.agi.results import PROMPT_MISSING, ChannelReport, Digits, Recording
from ivr.agi.watchdog import _NoReply, _Watchdog, _watchdog

log = structlog.get_logger("pingjia.ivr")

# Longest a reply may take beyond the command's own time limit before the peer counts as gone.
REPLY_GRACE_S = 30.0
MAX_USAGE_LINES = 200


class Hangup(Exception):
    """The caller hung up, or the Asterisk side of the session is gone."""


class AgiError(Exception):
    """Asterisk refused a command (510, 520, an error result); the message says which."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


_RECORDING_PROBLEMS = {
    "beep": "the Asterisk host has no `beep` sound (install Asterisk's core sounds)",
    "writefile": "Asterisk cannot write into the recordings folder (create it on the "
    "Asterisk host, writable by the asterisk user)",
}


def _digit(code: int) -> str | None:
    return chr(code) if code > 0 else None


class Channel:
    """One FastAGI session, seen from our side."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        on_command: Callable[[str, float], None] | None = None,
        grace_s: float = REPLY_GRACE_S,
        peer: str = "",
        report: ChannelReport | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.hung_up = False  # Asterisk sent the HANGUP line: every later command gets 511
        self.commands = 0
        # on_command(command, turnaround): our time from the previous reply (or the
        # environment block) to this command, i.e. what Asterisk waits on us.
        self._on_command = on_command
        self._idle_since = time.perf_counter()
        self.grace_s = grace_s  # a reply's time beyond its command's own limit
        self._watchdog: _Watchdog | None = None
        # The Asterisk host as this connection shows it (its address): the environment block
        # names no host, and asking for ${SYSTEMNAME} would cost a round trip per call.
        self.peer = peer
        self.report = report

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    async def _alive(self) -> bool:
        """After a -1 with nothing played: is the channel still up?

        Asterisk answers a missing sound as it answers a hang-up (`result=-1 endpos=0`), but
        only a hang-up makes the channel dead: CHANNEL STATUS then gets 511 (after the HANGUP
        line, unless AGISIGHUP=no), a live channel its state. Sent only after such a -1, so
        the normal path costs nothing (../shared/PLATFORM.md, "A missing prompt ...").
        """
        if self.hung_up:
            return False
        try:
            reply = await self.send("CHANNEL", "STATUS", limit_s=5.0)
        except Hangup:
            return False
        except AgiError:  # refused, but answered: a dead channel would have answered 511
            return not self.hung_up
        return not self.hung_up and reply.number >= 0

    def _missing(self, name: str) -> None:
        log.error(
            "prompt missing on the Asterisk host; the call goes on without it",
            prompt=name,
            asterisk=self.peer,
        )
        if self.report is not None:
            self.report.missing_prompt(name)

    async def _readline(self, limit_s: float) -> str:
        watchdog = self._watchdog or _watchdog()
        self._watchdog = watchdog
        watchdog.watch(self, limit_s)
        try:
            raw = await self.reader.readline()
        except _NoReply:
            raise Hangup(f"no reply from Asterisk in {limit_s:.0f} s") from None
        except (ConnectionError, ValueError) as exc:  # ValueError: a line over the limit
            raise Hangup(f"AGI connection broken: {exc}") from None
        finally:
            watchdog.waiting.pop(self, None)
        if not raw.endswith(b"\n"):
            raise Hangup("Asterisk closed the AGI connection")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def _read_reply(self, limit_s: float) -> Reply:
        while True:
            line = await self._readline(limit_s)
            if line == HANGUP_LINE:
                # Unsolicited: it may stand in front of the reply we are waiting for.
                self.hung_up = True
                continue
            if line.startswith(f"{USAGE}-"):
                return await self._read_usage(line, limit_s)
            try:
                return parse_reply(line)
            except ProtocolError as exc:
                raise AgiError(str(exc)) from None

    async def _read_usage(self, first: str, limit_s: float) -> Reply:
        usage: list[str] = []
        while len(usage) < MAX_USAGE_LINES:
            line = await self._readline(limit_s)
            if line.startswith(f"{USAGE} "):
                return Reply(code=USAGE, line=first, data=first[4:], usage=tuple(usage))
            usage.append(line)
        raise AgiError(f"520 usage block longer than {MAX_USAGE_LINES} lines")

    async def send(self, *words: str | int, limit_s: float = 0.0) -> Reply:
        """Send one command and return its reply; 510/511/520 are raised, not returned."""
        line = command_line(*words)
        if self.writer.is_closing():
            raise Hangup("the AGI connection is closed")
        if self._on_command is not None:
            self._on_command(str(words[0]), time.perf_counter() - self._idle_since)
        try:
            self.writer.write(line.encode("utf-8"))
            await self.writer.drain()
        except ConnectionError as exc:
            raise Hangup(f"AGI connection broken: {exc}") from None
        self.commands += 1
        reply = await self._read_reply(limit_s + self.grace_s)
        self._idle_since = time.perf_counter()
        if reply.code == DEAD_CHANNEL:
            self.hung_up = True
            raise Hangup(f"{line.strip()}: {reply.line}")
        if reply.code == INVALID_COMMAND:
            raise AgiError(f"{line.strip()}: Asterisk does not know this command", reply)
        if reply.code == USAGE:
            usage = " / ".join(u.strip() for u in reply.usage) or reply.data or ""
            raise AgiError(f"{line.strip()}: bad arguments; usage: {usage}", reply)
        if reply.code != 200:
            raise AgiError(f"{line.strip()}: unexpected reply {reply.line!r}", reply)
        return reply

    async def answer(self) -> None:
        reply = await self.send("ANSWER")
        if reply.number == -1:
            raise Hangup("ANSWER failed: the channel is gone")

    async def stream_file(self, name: str, escape: str = "") -> str | None:
        """Play a prompt: the escape digit that interrupted it, None when it played out,
        PROMPT_MISSING when the Asterisk host has no such sound (logged and reported)."""
        reply = await self.send("STREAM", "FILE", name, escape)
        if reply.number == -1:
            # -1 is a hang-up, or a missing file when nothing played and the channel is up.
            if not reply.endpos and await self._alive():
                self._missing(name)
                return PROMPT_MISSING
            raise Hangup(f"STREAM FILE {name} returned -1: the caller hung up")
        return _digit(reply.number)

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> Digits:
        reply = await self.send(
            "GET", "DATA", name, timeout_ms, max_digits, limit_s=timeout_ms * max_digits / 1000
        )
        if reply.result == "-1":
            if await self._alive():
                self._missing(name)  # Asterisk did not wait for keys either
                return Digits("", True)
            raise Hangup(f"GET DATA {name} returned -1: the caller hung up")
        return Digits(reply.result, reply.data == "timeout")

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """The key pressed within the time, or None."""
        reply = await self.send("WAIT", "FOR", "DIGIT", timeout_ms, limit_s=timeout_ms / 1000)
        if reply.number == -1:
            raise Hangup("WAIT FOR DIGIT returned -1")
        return _digit(reply.number)

    async def record_file(
        self, path: str, fmt: str, escape: str, max_ms: int, *, beep: bool, silence_s: int
    ) -> Recording:
        """Record the caller; how it ended is returned, a hang-up included (the file is kept).

        Every answer Asterisk 20 gives (res_agi.c `handle_recordfile`, ../shared/PLATFORM.md):
        `(dtmf)`, `(timeout)` with a meaningless result (silence or the time limit), `(hangup)`;
        `(randomerror)` from the beep: a key there (result = its code) skips the message, -1
        is a hang-up or, on a live channel, a missing beep; `(writefile)`: the folder cannot
        be written.
        """
        words: list[str | int] = ["RECORD", "FILE", path, fmt, escape, max_ms]
        if beep:
            words.append("BEEP")
        words.append(f"s={silence_s}")
        reply = await self.send(*words, limit_s=max_ms / 1000)
        endpos = reply.endpos or 0
        data = reply.data
        if data == "timeout":  # the result is junk here (seen: 50998): ignore it
            return Recording("timeout", None, endpos)
        number = reply.number if data in ("dtmf", "randomerror") else -1
        if data == "dtmf":
            return Recording("dtmf", _digit(number), endpos)
        if data == "randomerror" and number > 0:
            return Recording("skipped", _digit(number), 0)
        if data != "hangup" and await self._alive():
            problem = "beep" if data == "randomerror" and beep else data or "error"
            self._recording_failed(path, fmt, problem, reply)
            return Recording("failed", None, 0, problem)
        self.hung_up = True
        return Recording("hangup", None, endpos)

    def _recording_failed(self, path: str, fmt: str, problem: str, reply: Reply) -> None:
        why = _RECORDING_PROBLEMS.get(problem, f"Asterisk answered {reply.line!r}")
        folder = path.rsplit("/", 1)[0] or "/"
        sound = "beep" if problem == "beep" else None
        log.error(
            f"voice message not recorded: {why}; the caller is thanked without it",
            **({"sound": sound} if sound else {"folder": folder, "file": f"{path}.{fmt}"}),
            asterisk=self.peer,
        )
        if self.report is not None:
            self.report.recording_failed(problem)

    async def say_digits(self, digits: str, escape: str = "") -> str | None:
        reply = await self.send("SAY", "DIGITS", digits, escape)
        if reply.number == -1:
            raise Hangup("SAY DIGITS returned -1")
        return _digit(reply.number)

    async def set_variable(self, name: str, value: str) -> None:
        await self.send("SET", "VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.send("GET", "VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        """An expression evaluated by Asterisk (`${ASTDATADIR}`, `${STAT(e,...)}`); works on a
        hung-up channel too."""
        reply = await self.send("GET", "FULL", "VARIABLE", expression)
        return reply.data if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.send("VERBOSE", message, level)

    async def hangup(self) -> None:
        """Hang up the caller; a channel already gone is fine."""
        try:
            await self.send("HANGUP", limit_s=5.0)
        except (Hangup, AgiError):
            pass
