"""语音留言: the ticket page plays the caller's voice message from the shared recordings folder.

The file is served only to whoever may open the ticket (an agency token only its own agency's
tickets, as everywhere), with Range support so the browser can seek; a missing file, or a
message outside the shared folder, is said in words on the page instead of a silent player.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from console.web import ConsoleBase
from rating.errors import NotFound

# RECORD FILE writes WAV (ivr/flows/rating.py); other formats a city may configure.
AUDIO_TYPES = {".wav": "audio/wav", ".gsm": "audio/gsm", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}


@dataclass(frozen=True)
class VoiceState:
    """What the ticket page shows for a voice message: a player, or why there is none."""

    url: str | None
    problem: str | None


class VoicePlayer(ConsoleBase):
    def install_voice(self, app: web.Application) -> None:
        app.router.add_get("/console/tickets/{no}/voice", self.guarded(self.voice))

    def voice_state(self, ticket_no: str, voice_ref: str | None) -> VoiceState | None:
        """None when the caller left no message; otherwise the player's URL or the problem."""
        if not voice_ref:
            return None
        if self.deps.locate_voice is None:
            return VoiceState(None, "本服务未配置录音文件夹，无法播放。")
        try:
            self.deps.locate_voice(voice_ref)
        except NotFound as exc:
            return VoiceState(None, exc.message)
        return VoiceState(f"/console/tickets/{quote(ticket_no)}/voice", None)

    async def voice(self, request: web.Request) -> web.StreamResponse:
        visit = await self.signed_in(request)
        view = await self.visible(visit, request.match_info["no"])
        voice_ref = view.ticket.voice_ref
        if not voice_ref or self.deps.locate_voice is None:
            raise NotFound("此工单没有语音留言。", code="voice_not_found")
        return audio_file(self.deps.locate_voice(voice_ref))


def audio_file(path: Path) -> web.FileResponse:
    """A recording as the browser's player needs it: its media type, Range, never cached."""
    return web.FileResponse(
        path,
        headers={
            "Content-Type": AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
