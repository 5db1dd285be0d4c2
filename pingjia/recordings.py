"""Callers' voice messages, found in this host's mount of the shared recordings folder.

Asterisk writes a voice message under `PINGJIA_RECORDINGS_DIR` (a path on the Asterisk host)
and the rating keeps its `voice_ref` (ivr/recordings.py). The console and the API play it from
the same folder shared with this host (an NFS export, a compose volume), mounted here at
`PINGJIA_RECORDINGS_MOUNT` (by default the same path). Only files inside that folder are ever
served, whatever a stored `voice_ref` says.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ivr.recordings import VoiceRef
from rating.errors import NotFound

CODE = "voice_not_found"


class RecordingFolder:
    """Maps a stored `voice_ref` to the file in this host's mount of the recordings folder."""

    def __init__(self, asterisk_dir: str, mount: Path) -> None:
        self.asterisk_dir = PurePosixPath(asterisk_dir)
        self.mount = mount

    def locate(self, voice_ref: str) -> Path:
        """The voice message's file here; `NotFound` (code voice_not_found) saying why not."""
        try:
            where = PurePosixPath(VoiceRef.parse(voice_ref).path)
        except ValueError:
            raise NotFound(f"无法识别的语音留言位置：{voice_ref}", code=CODE) from None
        if ".." in where.parts or not where.is_relative_to(self.asterisk_dir):
            raise NotFound(f"语音留言不在共享录音文件夹 {self.asterisk_dir} 中：{where}", code=CODE)
        local = self.mount.joinpath(*where.relative_to(self.asterisk_dir).parts)
        try:
            # A symbolic link in the folder must not lead out of it.
            inside = local.resolve().is_relative_to(self.mount.resolve())
        except (OSError, RuntimeError):
            inside = False
        if not inside or not local.is_file():
            raise NotFound(
                f"语音留言文件不存在：{where.name}（共享录音文件夹 {self.mount}）", code=CODE
            )
        return local


def recording_folder(recordings_dir: str, mount: Path | None) -> RecordingFolder:
    """The folder as the settings name it (`PINGJIA_RECORDINGS_DIR`, `PINGJIA_RECORDINGS_MOUNT`)."""
    return RecordingFolder(recordings_dir, mount or Path(recordings_dir))
