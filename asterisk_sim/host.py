"""The Asterisk host behind the simulator: which sounds it has, its data folder, what
`GET FULL VARIABLE` evaluates (`${ASTDATADIR}`, `${SYSTEMNAME}`, `${STAT(e,path)}`) and whether
RECORD FILE can write where it is told.

A host can be told that sounds are missing (a prompt id such as `rating_greeting`, a full
name such as `pingjia/cmn/rating_greeting`, or a core sound such as `beep`) and that the
recordings folder does not exist, as a badly deployed Asterisk is (../shared/PLATFORM.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from asterisk_sim.caller import SoundLibrary

DATADIR = "/var/lib/asterisk"
# Asterisk's core sounds (asterisk-core-sounds-en-gsm): length in 8 kHz samples, and where.
CORE_SOUNDS = {"beep": 2000}
CORE_FILES = ("en/{}.gsm",)  # under the sounds folder
_INNERMOST = re.compile(r"\$\{([^${}]*)\}")


class SimHost:
    """What the simulated Asterisk finds on its disk."""

    def __init__(
        self,
        sounds: SoundLibrary,
        *,
        missing: Iterable[str] = (),
        datadir: str = DATADIR,
        systemname: str = "",
        write_recordings: bool = False,
        recordings_folder_exists: bool = True,
    ) -> None:
        self.sounds = sounds
        self.missing = set(missing)
        self.datadir = datadir
        self.systemname = systemname
        # Write RECORD FILE's audio where the command says (tests only: the path is one on
        # the Asterisk host), so a folder that does not exist answers (writefile).
        self.write_recordings = write_recordings
        self.recordings_folder_exists = recordings_folder_exists

    def hidden(self, name: str) -> bool:
        """Whether this host was told to lack the sound (by id, full name or core name)."""
        return name in self.missing or name.rsplit("/", 1)[-1] in self.missing

    def samples(self, name: str) -> int | None:
        """How long a sound plays (8 kHz samples), or None when this host lacks it."""
        if self.hidden(name):
            return None
        found = self.sounds.samples(name)
        return CORE_SOUNDS.get(name) if found is None else found

    def can_write(self, target: Path) -> bool:
        """Whether RECORD FILE could create `target` (its folder exists)."""
        if not self.recordings_folder_exists:
            return False
        return not self.write_recordings or target.parent.is_dir()

    def exists(self, path: str) -> bool:
        """STAT(e,path) for the files of sounds: prompts and core sounds under the data dir."""
        root = f"{self.datadir}/sounds/"
        if not path.startswith(root) or "." not in path.rsplit("/", 1)[-1]:
            return Path(path).exists()
        relative, _, ext = path[len(root) :].rpartition(".")
        core = relative.rsplit("/", 1)[-1]
        if core in CORE_SOUNDS:
            return not self.hidden(core) and any(
                f"{relative}.{ext}" == pattern.format(core) for pattern in CORE_FILES
            )
        if self.hidden(relative):
            return False
        found = self.sounds.path(relative)
        return found is not None and found.with_suffix(f".{ext}").is_file()

    def evaluate(self, expression: str, variables: Mapping[str, str]) -> str:
        """Asterisk's substitution, innermost `${…}` first: variables, built-ins, STAT()."""
        while True:
            match = _INNERMOST.search(expression)
            if match is None:
                return expression
            expression = (
                expression[: match.start()]
                + self._value(match.group(1), variables)
                + expression[match.end() :]
            )

    def _value(self, inner: str, variables: Mapping[str, str]) -> str:
        if inner.startswith("STAT(") and inner.endswith(")"):
            action, _, path = inner[5:-1].partition(",")
            return "1" if action == "e" and self.exists(path) else "0"
        builtins = {"ASTDATADIR": self.datadir, "SYSTEMNAME": self.systemname}
        return variables.get(inner, builtins.get(inner, ""))
