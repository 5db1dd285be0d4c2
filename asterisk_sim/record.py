"""RECORD FILE as the simulated Asterisk answers it (res_agi.c `handle_recordfile`): the beep
with the escape digits live, the file, and each way a recording ends (../shared/PLATFORM.md,
"RECORD FILE on a real Asterisk 20.20.1, as callers meet it")."""

from __future__ import annotations

from pathlib import Path

from asterisk_sim.caller import SAMPLES_PER_MS, Phase, write_tone
from asterisk_sim.host import SimHost


class RecordFile:
    """The RECORD FILE command of `Simulator` (which provides the host and the phases)."""

    host: SimHost
    _digit: str

    async def _phase(self, phase: Phase) -> tuple[str, int]:
        raise NotImplementedError

    async def _record_file(self, args: list[str]) -> str:
        """res_agi.c `handle_recordfile`: the beep (escape digits live), then the file."""
        path, fmt, escape, limit = args[0], args[1], args[2], int(args[3])
        rest = args[4:]
        silence = next((int(a[2:]) for a in rest if a.startswith("s=") and a[2:].isdigit()), 0)
        offset = int(rest[0]) if rest and _is_number(rest[0]) else 0
        # Asterisk's own test: a 5th argument that is neither an offset nor s=, or a 6th not s=.
        beep = bool(rest) and not _is_number(rest[0]) and not rest[0].startswith("s=")
        beep = beep or (len(rest) > 1 and not rest[1].startswith("s="))
        if beep:
            beep_samples = self.host.samples("beep")
            if beep_samples is None:  # no core sounds on this host; the channel stays up
                return f"200 result=-1 (randomerror) endpos={offset}"
            what, _ = await self._phase(Phase("play", beep_samples // SAMPLES_PER_MS, escape))
            if what == "key":  # nothing recorded: the key's code and (randomerror)
                return f"200 result={ord(self._digit)} (randomerror) endpos={offset}"
            if what == "hangup":
                return f"200 result=-1 (randomerror) endpos={offset}"
        target = Path(f"{path}.{fmt}")
        if not self.host.can_write(target):
            return "200 result=-1 (writefile)"  # res_agi: ast_writefile() failed
        what, ms = await self._phase(Phase("record", None if limit < 0 else limit, escape))
        if what == "key":
            reply = f"200 result={ord(self._digit)} (dtmf) endpos={ms * SAMPLES_PER_MS}"
        elif what == "hangup":
            reply = f"200 result=-1 (hangup) endpos={ms * SAMPLES_PER_MS}"
        else:
            spoken = ms if what == "speak" else 0
            ended_by_silence = silence > 0 and (limit < 0 or spoken + silence * 1000 < limit)
            if ended_by_silence:
                # Asterisk rewinds the file by the silence less one second (res_agi.c:
                # ast_stream_rewind(fs, silence - 1000)), so 1 s of it stays. The result is
                # what its last ast_waitfor() left of the limit: junk to a reader (seen: 50998).
                ms = spoken + min(silence * 1000, 1000)
                left = limit - spoken - silence * 1000 if limit >= 0 else 0
            else:  # the time limit ends it (no s=, or talk up to the limit)
                ms, left = (limit, 0) if limit >= 0 else (spoken, 0)
            reply = f"200 result={left} (timeout) endpos={ms * SAMPLES_PER_MS}"
        if self.host.write_recordings and fmt == "wav":  # kept however it ended
            write_tone(target, ms)
        return reply


def _is_number(text: str) -> bool:
    return text.lstrip("-").isdigit()
