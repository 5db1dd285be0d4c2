"""What the simulator knows of Asterisk's AGI: the commands (name, argument counts, a usage
text for 520), which still run on a dead channel, the environment block, and a call's record.

The usage texts are our own short wording of Asterisk's documented syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def _ints(*positions: int) -> Callable[[list[str]], bool]:
    def check(args: list[str]) -> bool:
        return all(_is_int(args[p]) for p in positions if p < len(args))

    return check


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


@dataclass(frozen=True)
class CommandSpec:
    name: str
    least: int
    most: int | None
    usage: tuple[str, ...]
    args_ok: Callable[[list[str]], bool] = lambda _args: True

    def arity_ok(self, count: int) -> bool:
        return count >= self.least and (self.most is None or count <= self.most)


SPEC: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("ANSWER", 0, 0, (" Usage: ANSWER", "\tAnswers the channel.")),
        CommandSpec(
            "STREAM FILE",
            2,
            3,
            (
                " Usage: STREAM FILE <filename> <escape digits> [sample offset]",
                "\tPlays a file; a key among the escape digits stops it.",
            ),
            _ints(2),
        ),
        CommandSpec(
            "GET DATA",
            1,
            3,
            (" Usage: GET DATA <file to be streamed> [timeout] [max digits]",),
            _ints(1, 2),
        ),
        CommandSpec(
            "WAIT FOR DIGIT",
            1,
            1,
            (" Usage: WAIT FOR DIGIT <timeout>", "\tWaits up to timeout ms (-1: forever)."),
            _ints(0),
        ),
        CommandSpec(
            "RECORD FILE",
            4,
            None,
            (
                " Usage: RECORD FILE <filename> <format> <escape digits> <timeout> "
                "[offset samples] [BEEP] [s=silence]",
            ),
            _ints(3),
        ),
        CommandSpec(
            "SAY DIGITS",
            2,
            2,
            (" Usage: SAY DIGITS <number> <escape digits>",),
            lambda args: args[0].isdigit(),
        ),
        CommandSpec("SET VARIABLE", 2, 2, (" Usage: SET VARIABLE <variablename> <value>",)),
        CommandSpec("GET VARIABLE", 1, 1, (" Usage: GET VARIABLE <variablename>",)),
        CommandSpec(
            "GET FULL VARIABLE",
            1,
            2,
            (" Usage: GET FULL VARIABLE <variablename> [<channel name>]",),
        ),
        CommandSpec("CHANNEL STATUS", 0, 1, (" Usage: CHANNEL STATUS [<channelname>]",)),
        CommandSpec("VERBOSE", 1, 2, (" Usage: VERBOSE <message> <level>",)),
        CommandSpec("NOOP", 0, None, (" Usage: NOOP",)),
        CommandSpec("EXEC", 1, None, (" Usage: EXEC <application> <options>",)),
        CommandSpec("HANGUP", 0, 1, (" Usage: HANGUP [<channelname>]",)),
    )
}

# Commands Asterisk still runs after the caller hung up; every other one is answered 511.
DEAD_OK = ("EXEC", "GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "NOOP")
DEAD_OK_PREFIX = ("DATABASE ", "ASYNCAGI BREAK")
DEAD_REPLY = "511 Command Not Permitted on a dead channel or intercept routine"
KNOWN_APPS = {"noop", "answer", "wait", "playback", "set", "verbose"}


@dataclass
class CallResult:
    """What happened on the simulated call."""

    uniqueid: str
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (">" sent | "<" got, line)
    commands: list[str] = field(default_factory=list)
    turnaround_s: list[float] = field(default_factory=list)  # our reply -> their next command
    hung_up: bool = False
    closed_by_server: bool = False


def environment(
    host: str, port: int, script: str, args: Sequence[str], uniqueid: str, **overrides: str
) -> list[tuple[str, str]]:
    """The environment block in the order Asterisk writes it."""
    values = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://{host}:{port}/{script}",
        "agi_channel": f"PJSIP/citizen-{int(uniqueid.split('.')[-1]):08x}",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid,
        "agi_version": "20.20.1",
        "agi_callerid": "unknown",
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "12345",
        "agi_rdnis": "unknown",
        "agi_context": "hotline-rating",
        "agi_extension": "s",
        "agi_priority": "2",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "139872001545984",
    }
    values.update(overrides)
    if not script:
        del values["agi_network_script"]
    pairs = list(values.items())
    pairs += [(f"agi_arg_{i}", arg) for i, arg in enumerate(args, start=1)]
    return pairs


def lookup(words: list[str]) -> tuple[CommandSpec | None, list[str]]:
    upper = [w.upper() for w in words]
    for size in (3, 2, 1):
        spec = SPEC.get(" ".join(upper[:size]))
        if spec is not None and len(words) >= size:
            return spec, words[size:]
    return None, []


def allowed_dead(name: str) -> bool:
    return name in DEAD_OK or name.startswith(DEAD_OK_PREFIX)


def usage_reply(spec: CommandSpec) -> str:
    lines = ["520-Invalid command syntax.  Proper usage follows:", *spec.usage]
    return "\n".join([*lines, "520 End of proper usage."])
