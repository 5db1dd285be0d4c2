"""The AGI commands the simulator knows: name, argument counts, and a usage text for 520.

The usage texts are our own short wording of Asterisk's documented syntax.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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
        CommandSpec("VERBOSE", 1, 2, (" Usage: VERBOSE <message> <level>",)),
        CommandSpec("NOOP", 0, None, (" Usage: NOOP",)),
        CommandSpec("EXEC", 1, None, (" Usage: EXEC <application> <options>",)),
        CommandSpec("HANGUP", 0, 1, (" Usage: HANGUP [<channelname>]",)),
    )
}
