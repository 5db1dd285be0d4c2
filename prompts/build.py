"""`pingjia prompts build`: synthesize missing prompts and normalize all of them for Asterisk.

Asterisk plays 8 kHz mono 16-bit WAV, and picks the cheapest file for the channel's codec:
.ulaw for μ-law, .alaw for A-law (the trunks of Chinese carriers), .gsm. Without the matching
file it transcodes every prompt, so each one is written in all of them. espeak-ng 1.51 reads
Chinese characters as English letters, so the text goes in as tone-numbered pinyin (pypinyin)
to the `cmn-latn-pinyin` voice (../shared/PLATFORM.md).

Every failure (a missing tool, a folder that cannot be written, a recording that is not audio)
is raised as a PromptError naming what to fix; the CLI prints it as one line.
"""

from __future__ import annotations

import audioop
import hashlib
import json
import shutil
import subprocess
import tempfile
import warnings
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # pydub warns at import when ffmpeg is missing; WAV needs none, and GSM is skipped then.
    warnings.filterwarnings("ignore", "Couldn't find ffmpeg", RuntimeWarning)
    from pydub import AudioSegment  # type: ignore[import-untyped]
    from pydub.exceptions import CouldntDecodeError  # type: ignore[import-untyped]
    from pydub.generators import Sine  # type: ignore[import-untyped]
    from pydub.silence import detect_leading_silence  # type: ignore[import-untyped]

from prompts.catalog import AUDIO, MANIFEST, RECORDED, PromptError, load_manifest

VOICES = {"cmn": "cmn-latn-pinyin"}
TARGET_DBFS = -18.0  # average loudness every prompt is brought to
SILENCE_DBFS = -45.0
EDGE_MS = 120  # silence kept at each end so prompts do not sound clipped
DIGITS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
PAUSES = str.maketrans({c: ", " for c in "，、；："} | {c: ". " for c in "。！？"})
BUILDER = "espeak-ng+pydub/1"
FFMPEG = ("ffmpeg", "-y", "-loglevel", "error")
GSM_ARGS = ("-c:a", "libgsm", "-ar", "8000", "-ac", "1", "-f", "gsm")
# Raw G.711 files made from the 16-bit PCM alone (no tool needed): μ-law and A-law.
G711 = {"ulaw": audioop.lin2ulaw, "alaw": audioop.lin2alaw}
FORMATS_NOTE = "8 kHz mono 16-bit PCM WAV (+ raw mu-law .ulaw, A-law .alaw, GSM 06.10 .gsm)"
# Asterisk's core sound `beep` (RECORD FILE ... BEEP plays it), for Asterisk images built
# without core sounds: a 1 kHz tone of a quarter second, written to audio/core/.
CORE = "core"
TONES = {"beep": (1000, 250, -12.0)}  # id -> (Hz, ms, dBFS)


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
        raise PromptError(
            "espeak-ng is not installed (Debian: apt-get install espeak-ng); it speaks the "
            "prompts that have no recording"
        )
    line = pinyin_line(text) if language == "cmn" else text
    _tool(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), line], out.name)
    return line


def _tool(command: list[str], what: str) -> None:
    """Run espeak-ng or ffmpeg; a failure is a PromptError with the tool's own last line."""
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise PromptError(
            f"{command[0]} failed on {what} (exit {exc.returncode})"
            + (f": {said[-1]}" if said else "")
        ) from None
    except subprocess.TimeoutExpired:
        raise PromptError(f"{command[0]} took over 60 s on {what}") from None


def normalize(source: Path) -> AudioSegment:
    """Trim silence, bring loudness to TARGET_DBFS, and convert to 8 kHz mono 16-bit."""
    try:
        sound = AudioSegment.from_file(str(source))
    except (CouldntDecodeError, IndexError, EOFError, wave.Error) as exc:
        raise PromptError(f"{source}: not audio pingjia can read (a WAV file): {exc}") from None
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
    files.update(_write_g711(sound.raw_data, base, G711))
    if shutil.which("ffmpeg"):
        gsm = base.with_suffix(".gsm")
        _tool([*FFMPEG, "-i", str(wav), *GSM_ARGS, str(gsm)], wav.name)
        files["gsm"] = _digest(gsm.read_bytes())
    return files


def _write_g711(pcm: bytes, base: Path, formats: dict[str, Any]) -> dict[str, str]:
    written = {}
    for suffix, encode in formats.items():
        data = encode(pcm, 2)
        base.with_suffix(f".{suffix}").write_bytes(data)
        written[suffix] = _digest(data)
    return written


def _complete(base: Path, files: dict[str, str]) -> list[str]:
    """Add the G.711 files an older build left out (.alaw), made from the built WAV."""
    missing = {
        suffix: encode
        for suffix, encode in G711.items()
        if suffix not in files or not base.with_suffix(f".{suffix}").is_file()
    }
    if not missing:
        return []
    with wave.open(str(base.with_suffix(".wav")), "rb") as built:
        pcm = built.readframes(built.getnframes())
    files.update(_write_g711(pcm, base, missing))
    return sorted(missing)


@contextmanager
def _writing(audio: Path) -> Iterator[None]:
    """Turn a file-system failure into a PromptError that names the path and what to do."""
    try:
        yield
    except OSError as exc:
        path = Path(exc.filename) if exc.filename else audio
        doing = "write" if path.is_relative_to(audio) else "read"
        hint = " (build prompts in a source checkout, or as the folder's owner)"
        raise PromptError(
            f"cannot {doing} {path}: {exc.strerror or exc}{hint if doing == 'write' else ''}"
        ) from None


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
    with _writing(audio):
        return _build(language, texts, audio, recorded, force, prune, progress)


def _build(
    language: str,
    texts: dict[str, str],
    audio: Path,
    recorded: Path,
    force: bool,
    prune: bool,
    progress: Callable[[str], None],
) -> BuildReport:
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
            added = _complete(out_dir / prompt_id, entry["files"])
            if added:
                progress(f"[{index}/{len(texts)}] {language}/{prompt_id}: +{', +'.join(added)}")
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
    _save(audio, manifest)
    report.formats = sorted({k for e in entries.values() for k in e["files"]})
    return report


def build_tones(
    audio: Path = AUDIO, progress: Callable[[str], None] = lambda _l: None
) -> BuildReport:
    """Write the core sounds pingjia ships for Asterisk (`beep`) into audio/core/."""
    with _writing(audio):
        manifest = load_manifest(audio)
        entries: dict[str, Any] = manifest.setdefault("tones", {})
        out_dir = audio / CORE
        out_dir.mkdir(parents=True, exist_ok=True)
        report = BuildReport()
        for tone_id, (hertz, millis, dbfs) in sorted(TONES.items()):
            source = f"tone:{hertz}Hz/{millis}ms/{dbfs}dBFS"
            entry = entries.get(tone_id, {})
            if entry.get("source") == source and (out_dir / f"{tone_id}.wav").is_file():
                _complete(out_dir / tone_id, entry["files"])
                report.kept.append(tone_id)
                continue
            progress(f"{CORE}/{tone_id}")
            sound = Sine(hertz, sample_rate=8000, bit_depth=16).to_audio_segment(millis, dbfs)
            sound = sound.fade_in(10).fade_out(10).set_channels(1)
            files = _write_formats(sound, out_dir / tone_id)
            entries[tone_id] = {"source": source, "duration_ms": len(sound), "files": files}
            report.built.append(tone_id)
        _save(audio, manifest)
        report.formats = sorted({k for e in entries.values() for k in e["files"]})
        return report


def _save(audio: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest if it changed: an installed package that is up to date (a read-only
    site-packages, the image's user) then builds without writing anything."""
    manifest["format"] = FORMATS_NOTE
    text = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    path = audio / MANIFEST
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
