"""The caller behind the AGI simulator: scripted keys and timing, or a person at a keyboard.

Time is simulated: the simulator asks the caller what happens during each phase of a command
(a prompt playing, a wait for a key, a recording) and the caller answers with the first thing
it does in that phase, at which millisecond. Nothing sleeps, so tests and benchmarks run at
socket speed while the replies carry the same results and `endpos` a real call would.
"""

from __future__ import annotations

import asyncio
import math
import wave
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

ALL_DIGITS = "0123456789*#ABCD"
SAMPLES_PER_MS = 8  # Asterisk counts endpos in 8 kHz samples for our prompts


@dataclass(frozen=True)
class Phase:
    """A stretch of a call: a prompt playing, a wait for keys, or a recording."""

    kind: Literal["play", "wait", "record"]
    duration_ms: int | None  # None: no limit
    accepts: str  # keys that end the phase; any other key is dropped, as Asterisk does
    file: str | None = None


@dataclass(frozen=True)
class Press:
    digit: str
    at_ms: int


@dataclass(frozen=True)
class HangUp:
    at_ms: int


@dataclass(frozen=True)
class Speak:
    """The caller talks this long and then falls silent (ends a recording by silence)."""

    ms: int


Action = Press | HangUp | Speak | None


class Caller(Protocol):
    async def act(self, phase: Phase) -> Action:
        """The first thing the caller does in this phase, or None if nothing."""
        ...


@dataclass(frozen=True)
class Key:
    """Press `digit`. `after_ms=None`: once the prompt has ended and the call waits for a key
    (how most people answer a menu); a number: that long after the previous event, counting
    prompts too, so a small number barges into a prompt."""

    digit: str
    after_ms: int | None = None


@dataclass(frozen=True)
class Hang:
    """Hang up; `after_ms` as for Key."""

    after_ms: int | None = None


@dataclass(frozen=True)
class Talk:
    """Speak into a recording for `ms`, then stay silent."""

    ms: int


Event = Key | Hang | Talk


class ScriptedCaller:
    """Plays a list of events against the simulated timeline."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events: deque[Event] = deque(events)
        self.elapsed_ms = 0  # time since the last event fired, for timed events

    async def act(self, phase: Phase) -> Action:
        if not self.events:
            return None
        event = self.events[0]
        if isinstance(event, Talk):
            if phase.kind != "record":
                return None
            self.events.popleft()
            return Speak(event.ms)
        if event.after_ms is None:
            if phase.kind == "play":
                return None
            return self._fire(0)
        remaining = event.after_ms - self.elapsed_ms
        if phase.duration_ms is None or remaining < phase.duration_ms:
            return self._fire(max(remaining, 0))
        self.elapsed_ms += phase.duration_ms
        return None

    def _fire(self, at_ms: int) -> Action:
        event = self.events.popleft()
        self.elapsed_ms = 0
        if isinstance(event, Key):
            return Press(event.digit, at_ms)
        return HangUp(at_ms)


def parse_keys(text: str) -> list[Event]:
    """`4,1,#` -> keys; `h` hangs up; `4@0` barges in after 0 ms; `t5000` talks 5 s."""
    events: list[Event] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        name, _, at = raw.partition("@")
        after = int(at) if at else None
        if name.lower() == "h":
            events.append(Hang(after))
        elif name.lower().startswith("t") and name[1:].isdigit():
            events.append(Talk(int(name[1:])))
        elif len(name) == 1 and name.upper() in ALL_DIGITS:
            events.append(Key(name.upper(), after))
        else:
            raise ValueError(f"bad key {raw!r}: use 0-9, *, #, h (hang up), t<ms> (talk), @ms")
    return events


class KeyboardCaller:
    """A person: each wait for a key asks for a line of keys (empty: no key, h: hang up)."""

    def __init__(self, ask: Callable[[str], str], show: Callable[[str], None]) -> None:
        self.ask = ask
        self.show = show
        self.typed: deque[str] = deque()

    async def act(self, phase: Phase) -> Action:
        if phase.kind == "play":
            return None
        if not self.typed:
            hint = "keys (Enter: none, h: hang up)" if phase.kind == "wait" else "message"
            line = await asyncio.to_thread(self.ask, f"  [{hint}] > ")
            if line.strip().lower() == "h":
                return HangUp(0)
            self.typed.extend(c for c in line.strip().upper() if c in ALL_DIGITS)
            if not self.typed:
                return Speak(2000) if phase.kind == "record" else None
        return Press(self.typed.popleft(), 0)


class SoundLibrary:
    """Where the simulated Asterisk finds its sounds, and how long each one plays."""

    def __init__(self, roots: dict[str, Path], default: Path | None = None) -> None:
        self.roots = roots
        self.default = default
        self._samples: dict[str, int | None] = {}

    def path(self, name: str) -> Path | None:
        if name.startswith("/"):
            return Path(f"{name}.wav")
        head, _, rest = name.partition("/")
        if rest and head in self.roots:
            return self.roots[head] / f"{rest}.wav"
        return self.default / f"{name}.wav" if self.default else None

    def samples(self, name: str) -> int | None:
        """Length in 8 kHz samples, or None when the file does not exist (or is not WAV)."""
        if name not in self._samples:
            path = self.path(name)
            try:
                with wave.open(str(path), "rb") as audio:
                    frames, rate = audio.getnframes(), audio.getframerate()
                self._samples[name] = frames * 8000 // rate
            except (OSError, EOFError, wave.Error, TypeError):
                self._samples[name] = None
        return self._samples[name]


TONE_HZ = 440  # what the simulated caller "says": a quiet tone, so the file is not silent


def write_tone(path: Path, ms: int) -> None:
    """An 8 kHz mono 16-bit WAV of `ms` milliseconds, as Asterisk's wav format writes."""
    rate = SAMPLES_PER_MS * 1000
    samples = array(
        "h",
        (
            int(3000 * math.sin(2 * math.pi * TONE_HZ * i / rate))
            for i in range(ms * SAMPLES_PER_MS)
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
