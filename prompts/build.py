"""`pingjia prompts build`: synthesize missing prompts and normalize all of them for Asterisk.

Asterisk plays 8 kHz mono 16-bit WAV (and .ulaw/.gsm when present, which saves it transcoding).
espeak-ng 1.51 reads Chinese characters as English letters, so the text goes in as tone-numbered
pinyin (pypinyin) to the `cmn-latn-pinyin` voice (../shared/PLATFORM.md).
"""

from __future__ import annotations

import audioop
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydub import AudioSegment  # type: ignore[import-untyped]
from pydub.silence import detect_leading_silence  # type: ignore[import-untyped]

from prompts.catalog import AUDIO, MANIFEST, RECORDED, load_manifest

VOICES = {"cmn": "cmn-latn-pinyin"}
TARGET_DBFS = -18.0  # average loudness every prompt is brought to
SILENCE_DBFS = -45.0
EDGE_MS = 120  # silence kept at each end so prompts do not sound clipped
DIGITS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
PAUSES = str.maketrans({c: ", " for c in "，、；："} | {c: ". " for c in "。！？"})
BUILDER = "espeak-ng+pydub/1"
FFMPEG = ("ffmpeg", "-y", "-loglevel", "error")
GSM_ARGS = ("-c:a", "libgsm", "-ar", "8000", "-ac", "1", "-f", "gsm")


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)


def pinyin_line(text: str) -> str:
    """The tone-numbered pinyin espeak-ng's Mandarin voice reads; digits read one by one."""
    # Imported here: its phrase dictionary is hundreds of thousands of objects, which a server
    # that only checks prompts at start would carry through every garbage collection.
    from pypinyin import Style, lazy_pinyin

    spelled = "".join(DIGITS.get(c, c) for c in text).translate(PAUSES)
    words = lazy_pinyin(spelled, style=Style.TONE3, neutral_tone_with_five=True)
    return " ".join(w.strip() for w in words if w.strip()).replace(" ,", ",").replace(" .", ".")


def synthesize(text: str, language: str, out: Path) -> str:
    """Write espeak-ng's WAV for `text` to `out`; returns the line it was given."""
    voice = VOICES.get(language)
    if voice is None:
        raise ValueError(f"no synthesizer voice for language {language!r}; record the prompt")
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    line = pinyin_line(text) if language == "cmn" else text
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), line],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return line


def normalize(source: Path) -> AudioSegment:
    """Trim silence, bring loudness to TARGET_DBFS, and convert to 8 kHz mono 16-bit."""
    sound = AudioSegment.from_file(str(source))
    start = max(detect_leading_silence(sound, SILENCE_DBFS) - EDGE_MS, 0)
    end = max(detect_leading_silence(sound.reverse(), SILENCE_DBFS) - EDGE_MS, 0)
    trimmed = sound[start : len(sound) - end] if len(sound) - end > start else sound
    if trimmed.dBFS != float("-inf"):
        trimmed = trimmed.apply_gain(TARGET_DBFS - trimmed.dBFS)
    peak = trimmed.max_dBFS
    if peak > -1.0:  # keep a little headroom so the gain never clips
        trimmed = trimmed.apply_gain(-1.0 - peak)
    converted: AudioSegment = trimmed.set_frame_rate(8000).set_channels(1).set_sample_width(2)
    return converted


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_formats(sound: AudioSegment, base: Path) -> dict[str, str]:
    wav = base.with_suffix(".wav")
    sound.export(str(wav), format="wav")
    files = {"wav": _digest(wav.read_bytes())}
    ulaw = base.with_suffix(".ulaw")
    ulaw.write_bytes(audioop.lin2ulaw(sound.raw_data, 2))
    files["ulaw"] = _digest(ulaw.read_bytes())
    if shutil.which("ffmpeg"):
        gsm = base.with_suffix(".gsm")
        subprocess.run(
            [*FFMPEG, "-i", str(wav), *GSM_ARGS, str(gsm)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        files["gsm"] = _digest(gsm.read_bytes())
    return files


def build(
    language: str,
    texts: dict[str, str],
    *,
    audio: Path = AUDIO,
    recorded: Path = RECORDED,
    force: bool = False,
    prune: bool = False,
    progress: Callable[[str], None] = lambda _line: None,
) -> BuildReport:
    """Build every prompt in `texts` whose source changed or whose audio is missing."""
    manifest = load_manifest(audio)
    entries: dict[str, Any] = manifest.setdefault("prompts", {}).setdefault(language, {})
    out_dir = audio / language
    out_dir.mkdir(parents=True, exist_ok=True)
    report = BuildReport()
    for index, (prompt_id, text) in enumerate(sorted(texts.items()), start=1):
        own = recorded / language / f"{prompt_id}.wav"
        source = (
            f"recorded:{_digest(own.read_bytes())}"
            if own.is_file()
            else f"{BUILDER}:{_digest(text.encode())}"
        )
        entry = entries.get(prompt_id, {})
        if not force and entry.get("source") == source and (out_dir / f"{prompt_id}.wav").is_file():
            report.kept.append(prompt_id)
            continue
        progress(f"[{index}/{len(texts)}] {language}/{prompt_id}")
        with tempfile.TemporaryDirectory() as tmp:
            raw = own
            line = None
            if not own.is_file():
                raw = Path(tmp) / "raw.wav"
                line = synthesize(text, language, raw)
            sound = normalize(raw)
        files = _write_formats(sound, out_dir / prompt_id)
        entries[prompt_id] = {
            "text": text,
            "pinyin": line,
            "source": source,
            "duration_ms": len(sound),
            "files": files,
        }
        report.built.append(prompt_id)
    if prune:
        for stale in sorted(set(entries) - set(texts)):
            for suffix in entries.pop(stale)["files"]:
                (out_dir / f"{stale}.{suffix}").unlink(missing_ok=True)
    manifest["format"] = "8 kHz mono 16-bit PCM WAV (+ raw mu-law .ulaw, GSM 06.10 .gsm)"
    (audio / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    report.formats = sorted({k for e in entries.values() for k in e["files"]})
    return report
