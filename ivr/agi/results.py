"""What the channel's commands answer, as flows see them, and what a channel reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol


@dataclass(frozen=True)
class Digits:
    """GET DATA's answer: the digits entered and whether the time ran out."""

    digits: str
    timed_out: bool


@dataclass(frozen=True)
class Recording:
    """RECORD FILE's answer: how it ended, the key that ended it, the length in samples."""

    # "dtmf", "timeout" (silence or the time limit), "hangup", "skipped" (a key during the
    # beep: nothing recorded) or "failed" (nothing recorded; `problem` says why)
    ended_by: str
    digit: str | None
    endpos: int
    # "beep" (no beep sound on the Asterisk host), "writefile" (the folder cannot be
    # written) or Asterisk's own word for another failure
    problem: str | None = None


# What `stream_file` returns for a sound the Asterisk host does not have: falsy like "no key",
# so a flow goes on to its next step, and told apart by the steps that care.
PROMPT_MISSING: Final = ""


class ChannelReport(Protocol):
    """What a channel reports beside its log lines (the server's metrics)."""

    def missing_prompt(self, prompt: str) -> None: ...
    def recording_failed(self, problem: str) -> None: ...
