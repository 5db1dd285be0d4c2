"""The AGI wire format, as pure functions: environment block, command quoting, reply lines.

Written from Asterisk's behaviour as ../shared/PLATFORM.md describes it, not from panoramisk's
parser (which drops `(timeout)`, turns every `result=-1` into an error dict and reads 520
blocks short).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from rating.text import unstorable

HANGUP_LINE = "HANGUP"
DEAD_CHANNEL = 511
INVALID_COMMAND = 510
USAGE = 520

_REPLY = re.compile(
    r"^(?P<code>\d{3})(?P<sep>[ -])?(?P<rest>.*)$",
)
_RESULT = re.compile(
    r"^result=(?P<result>\S*)(?:\s+\((?P<data>.*?)\))?(?:\s+endpos=(?P<endpos>-?\d+))?\s*$"
)
_RESULT_VALUE = re.compile(r"^result=(?P<result>\S*)(?:\s+\((?P<data>.*)\))?\s*$")
# The usual reply in its canonical spelling, parsed in one match; any other line takes the
# general path above (bench/ivr_bench.py: parsing was 3 % of the server under a burst).
_PLAIN_200 = re.compile(r"200 result=(-?\d*)(?: \(([^()]*)\))?(?: endpos=(-?\d+))?")


class ProtocolError(ValueError):
    """The peer sent something that is not AGI."""


@dataclass(frozen=True)
class Reply:
    """One parsed reply: `200 result=53 (dtmf) endpos=1200` and its kin."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    line: str = ""
    usage: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        """The result as an integer; an empty result (GET DATA with no key) reads as 0."""
        if self.result == "":
            return 0
        try:
            return int(self.result)
        except ValueError:
            raise ProtocolError(f"non-numeric result in {self.line!r}") from None


def parse_reply(line: str) -> Reply:
    """Parse one reply line (the 520 block's first line included); raises ProtocolError."""
    plain = _PLAIN_200.fullmatch(line)
    if plain is not None:
        result, data, endpos = plain.groups()
        return Reply(200, result, data, int(endpos) if endpos is not None else None, line)
    match = _REPLY.match(line)
    if match is None:
        raise ProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(match["code"])
    rest = match["rest"]
    if code != 200:
        return Reply(code=code, line=line, data=rest.strip() or None)
    found = _RESULT.match(rest.strip()) or _RESULT_VALUE.match(rest.strip())
    if found is None:
        raise ProtocolError(f"200 reply without result=: {line[:80]!r}")
    groups = found.groupdict()
    endpos = groups.get("endpos")
    return Reply(
        code=200,
        result=groups["result"],
        data=groups["data"],
        endpos=int(endpos) if endpos is not None else None,
        line=line,
    )


_FORBIDDEN = re.compile(r"[\n\r\0]")
_NEEDS_QUOTES = re.compile(r'[ \t"\\]')


def quote(argument: str) -> str:
    """Quote one command argument so Asterisk's parser reads it back as one word."""
    # Two regex scans instead of a generator per character: this runs for every word of
    # every AGI command (bench/ivr_bench.py showed it at 3 % of the server).
    if _FORBIDDEN.search(argument):
        raise ValueError(f"an AGI argument cannot hold a line break: {argument!r}")
    if argument and not _NEEDS_QUOTES.search(argument):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def command_line(*words: str | int) -> str:
    """A command line, arguments quoted where needed, ending in a newline."""
    return " ".join(quote(str(w)) for w in words) + "\n"


def split_command(line: str) -> list[str]:
    """Split a command line into words as Asterisk does: blanks, "quotes", backslash escapes."""
    words: list[str] = []
    current: list[str] = []
    in_word = quoted = escaped = False
    for char in line.rstrip("\r\n"):
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = in_word = True
        elif char == '"':
            quoted = not quoted
            in_word = True
        elif char in " \t" and not quoted:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def parse_environment(block: bytes) -> dict[str, str]:
    """The `agi_*` variables of the block that opens a FastAGI session."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    env: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(": ")
        if not sep or not name.startswith("agi_"):
            raise ProtocolError(f"not an AGI environment line: {line[:80]!r}")
        if unstorable(value) is None:
            env[name] = value
        # else: a NUL no database stores (Asterisk sends none); refused as if not sent, so
        # the call still goes on and gets rated.
    if "agi_request" not in env and "agi_network" not in env:
        raise ProtocolError("the environment block names no agi_request")
    return env


@dataclass(frozen=True)
class ScriptRequest:
    """What the dialplan asked for: the script name, its query and positional arguments."""

    script: str
    query: dict[str, list[str]]
    args: tuple[str, ...]

    def first(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def script_request(env: dict[str, str]) -> ScriptRequest:
    """Split `agi_network_script` into the route (path without query) and its parameters."""
    raw = env.get("agi_network_script", "")
    path, _, query = raw.partition("?")
    args: list[str] = []
    index = 1
    while f"agi_arg_{index}" in env:
        args.append(env[f"agi_arg_{index}"])
        index += 1
    return ScriptRequest(
        script=path.strip("/"),
        query=parse_qs(query, keep_blank_values=False),
        args=tuple(args),
    )
