"""Where a caller's voice message lives: its file name on the Asterisk host, and `voice_ref`.

Asterisk's uniqueid alone collides across servers (three started in one second all handed out
`1796455624.0`, ../shared/PLATFORM.md), so the file name carries the Asterisk host too, and
`voice_ref` says which host holds the file:

    asterisk://<host>/<absolute path on that host>     e.g.
    asterisk://10.0.0.5/var/spool/asterisk/monitor/pingjia/10.0.0.5-1796455624.0.wav

Values stored before this form are plain absolute paths (host unknown); `VoiceRef.parse`
reads both, so whoever serves a recording from the shared recordings folder (the console) can
take `path` under its own mount of that folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "asterisk://"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text)


def recording_path(folder: str, host: str, uniqueid: str) -> str:
    """The path RECORD FILE writes to (without the format): `<folder>/<host>-<uniqueid>`.

    In the file name rather than a sub-folder per host: Asterisk does not create folders."""
    name = _safe(uniqueid) or "call"
    return f"{folder.rstrip('/')}/{_safe(host) + '-' if host else ''}{name}"


@dataclass(frozen=True)
class VoiceRef:
    """A voice message's place: the Asterisk host (None for old plain-path values) and path."""

    host: str | None
    path: str

    def __str__(self) -> str:
        if self.host is None:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"{SCHEME}{host}{self.path}"

    @classmethod
    def parse(cls, ref: str) -> VoiceRef:
        """Read a stored `voice_ref`: `asterisk://host/path`, or an old plain path."""
        if not ref.startswith(SCHEME):
            return cls(None, ref)
        rest = ref[len(SCHEME) :]
        if rest.startswith("["):
            host, _, path = rest[1:].partition("]")
        else:
            host, slash, path = rest.partition("/")
            path = slash + path
        if not host or not path.startswith("/"):
            raise ValueError(f"not a voice_ref: {ref!r} (asterisk://HOST/PATH or /PATH)")
        return cls(host, path)
