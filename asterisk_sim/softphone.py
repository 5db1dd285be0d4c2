"""`pingjia call`: a console softphone that reaches the FastAGI server as Asterisk would.

It runs the simulator with a person (or `--keys`) as the caller, prints each prompt's text
as it plays (and plays its audio when a player is installed), and each key pressed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from asterisk_sim.caller import Caller, SoundLibrary
from asterisk_sim.simulator import CallResult, Simulator
from ivr.agi.protocol import split_command

KEYED = ("STREAM FILE", "WAIT FOR", "RECORD FILE", "SAY DIGITS")
PLAYERS = (("aplay", "-q"), ("paplay",), ("play", "-q"))


def find_player() -> tuple[str, ...] | None:
    for player in PLAYERS:
        if shutil.which(player[0]):
            return player
    return None


class Console:
    """Turns the AGI conversation into lines a person can follow."""

    def __init__(
        self,
        texts: Mapping[str, str],
        sounds: SoundLibrary,
        show: Callable[[str], None],
        player: tuple[str, ...] | None = None,
        verbose: bool = False,
        missing: Collection[str] = (),
    ) -> None:
        self.texts = texts
        self.sounds = sounds
        self.show = show
        self.player = player
        self.verbose = verbose
        self.missing = missing  # sounds the simulated Asterisk host lacks

    def on_line(self, direction: str, line: str) -> None:
        if self.verbose:
            self.show(f"    {'asterisk' if direction == '>' else 'pingjia '} {direction} {line}")
        if direction == ">":
            self._reply(line)
            return
        words = split_command(line)
        self.last = " ".join(w.upper() for w in words[:2])
        if self.last in ("STREAM FILE", "GET DATA") and len(words) > 2:
            name = words[2]
            if name in self.missing or name.rsplit("/", 1)[-1] in self.missing:
                self.show(f"🔇 ({name}: no such sound on this Asterisk; the caller hears nothing)")
                return
            self.show(f"🔊 {self.texts.get(name.rsplit('/', 1)[-1], name)}")
            self._play(name)
        elif self.last == "RECORD FILE":
            self.show("🎙  (recording your message; # ends it)")
        elif self.last.startswith("HANGUP"):
            self.show("☎  pingjia hung up")

    last = ""

    def _reply(self, line: str) -> None:
        if line == "HANGUP":
            self.show("☎  the caller's side hung up")
            return
        if not line.startswith("200 result="):
            return
        if self.last == "RECORD FILE":
            if line.startswith("200 result=-1 (") and "(hangup)" not in line:
                self.show(f"   (nothing recorded: Asterisk answered {line!r})")
            if "(timeout)" in line or "result=-1" in line:
                return  # silence's result is junk, not a key
            if "(randomerror)" in line:
                self.show("   (a key during the beep: no message)")
        value = line.split("result=", 1)[1].split(" ", 1)[0]
        if self.last == "GET DATA" and value and value != "-1":
            self.show(f"   keys {value}")
        elif self.last in KEYED and value.isdigit() and int(value) > 0:
            self.show(f"   key {chr(int(value))}")

    def _play(self, name: str) -> None:
        path = self.sounds.path(name)
        if self.player and path and path.is_file():
            subprocess.run([*self.player, str(path)], check=False, capture_output=True)


async def place_call(
    host: str,
    port: int,
    script: str,
    caller: Caller,
    console: Console,
    *,
    caller_id: str = "unknown",
    uniqueid: str | None = None,
    recordings_folder_exists: bool = True,
) -> CallResult:
    """Run one call against the server; the CallResult has the whole transcript."""
    simulator = Simulator(
        caller,
        console.sounds,
        on_line=console.on_line,
        missing=console.missing,
        recordings_folder_exists=recordings_folder_exists,
    )
    return await simulator.call(
        host, port, script, uniqueid=uniqueid, agi_callerid=caller_id, agi_calleridname=caller_id
    )


def prompt_sounds(audio_dir: Path) -> SoundLibrary:
    """Sounds as Asterisk finds them when prompts/audio is installed as sounds/pingjia."""
    return SoundLibrary({"pingjia": audio_dir})
