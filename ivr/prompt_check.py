"""Asks Asterisk whether the sounds the flows play are on its host, once per interval.

A prompt missing on the Asterisk host shows only when a caller reaches it (the channel logs
it then); this check finds the ones no caller has reached yet. It runs on an AGI session that
has ended (after the flow's last command, usually our HANGUP: `GET FULL VARIABLE` still works
on a hung-up channel), so no caller waits for it, and once per Asterisk host per interval per
process: one `${ASTDATADIR}`, then `${STAT(e,…)}` for every file a sound may be in, a few
hundred checks per command (../shared/PLATFORM.md, "A missing prompt looks like a hang-up").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from ivr.agi.channel import AgiError, Channel, Hangup

log = structlog.get_logger("pingjia.ivr")

INTERVAL_S = 3600.0
RETRY_S = 60.0  # a check cut short (the session closed under it) is tried again this soon
PROMPT_FORMATS = ("wav", "ulaw", "alaw", "gsm")  # a prompt is there when one of these is
CORE_FORMATS = ("gsm", "wav", "ulaw", "alaw", "g722", "sln16")
MAX_COMMAND = 1500  # bytes of one GET FULL VARIABLE (older Asterisks read 2,048 at most)


class PromptCheck:
    """The sounds to look for (as flows play them: `pingjia/cmn/rating_greeting`; core
    sounds such as `beep` without a folder) and when each Asterisk host was last asked."""

    def __init__(
        self,
        sounds: Sequence[str],
        *,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sounds = list(dict.fromkeys(sounds))
        self.interval_s = interval_s
        self.clock = clock
        self._next: dict[str, float] = {}  # Asterisk host -> when it is due again
        self.last: dict[str, list[str]] = {}  # host -> the sounds found missing last time

    def due(self, host: str) -> bool:
        """Whether this host is due, claiming it so concurrent calls do not ask again."""
        now = self.clock()
        if self._next.get(host, 0.0) > now:
            return False
        self._next[host] = now + self.interval_s
        return True

    def candidates(self, datadir: str, sound: str, language: str) -> list[str]:
        """The files Asterisk would play `sound` from."""
        root = f"{datadir}/sounds"
        if "/" in sound:
            return [f"{root}/{sound}.{fmt}" for fmt in PROMPT_FORMATS]
        folders = [f"{root}/{language}", root] if language else [root]
        return [f"{folder}/{sound}.{fmt}" for folder in folders for fmt in CORE_FORMATS]

    async def run(self, channel: Channel) -> list[str] | None:
        """Ask, log the sounds missing in one line; None when the check could not finish."""
        host = channel.peer
        try:
            missing = await self._ask(channel)
        except (Hangup, AgiError) as exc:
            self._next[host] = self.clock() + RETRY_S
            log.info("prompt check on the Asterisk host postponed", detail=str(exc))
            return None
        if missing is None:
            return None
        self.last[host] = missing
        if missing:
            log.error(
                "prompts missing on the Asterisk host: callers will not hear them",
                missing=", ".join(missing),
                asterisk=host,
                checked=len(self.sounds),
            )
        else:
            log.info(
                "prompts all present on the Asterisk host", asterisk=host, checked=len(self.sounds)
            )
        return missing

    async def _ask(self, channel: Channel) -> list[str] | None:
        datadir = await channel.get_full_variable("${ASTDATADIR}")
        if not datadir:
            log.warning("prompt check skipped: Asterisk gave no ${ASTDATADIR}")
            return None
        language = channel.env.get("agi_language", "")
        missing: list[str] = []
        batch: list[tuple[str, int]] = []  # (sound, how many files) in the expression
        expression = ""
        for sound in [*self.sounds, ""]:  # "" flushes the last batch
            files = self.candidates(datadir, sound, language) if sound else []
            more = "".join(f"${{STAT(e,{path})}}" for path in files)
            if batch and (not sound or len(expression) + len(more) > MAX_COMMAND):
                answer = await channel.get_full_variable(expression) or ""
                if len(answer) != sum(n for _, n in batch) or answer.strip("01"):
                    log.warning(
                        "prompt check skipped: Asterisk cannot evaluate ${STAT()} "
                        "(is func_env loaded?)",
                        answer=answer[:80],
                    )
                    return None
                offset = 0
                for name, count in batch:
                    if "1" not in answer[offset : offset + count]:
                        missing.append(name)
                    offset += count
                batch, expression = [], ""
            if sound:
                batch.append((sound, len(files)))
                expression += more
        return missing
