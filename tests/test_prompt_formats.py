"""The files Asterisk plays: every prompt as WAV, μ-law and A-law (Chinese trunks speak A-law),
pingjia's own core `beep`, and build failures that name what to fix.

Bad inputs tried: an older build without .alaw files, a recording that is not audio, a file
where the output folder must go, a manifest that is not JSON.
"""

from __future__ import annotations

import audioop
import wave
from pathlib import Path

import pytest
from pydub.generators import Sine  # type: ignore[import-untyped]

from pingjia.ivr_prompts import required_prompts
from prompts import build as builder
from prompts.catalog import AUDIO, PromptError, load_manifest
from rating.policy.loader import builtin_profiles, load_profile


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        return audio.readframes(audio.getnframes())


@pytest.mark.parametrize("name", builtin_profiles())
def test_every_prompt_ships_as_ulaw_and_alaw_of_its_wav(name: str) -> None:
    profile = load_profile(name)
    folder = AUDIO / profile.prompt_language
    entries = load_manifest()["prompts"][profile.prompt_language]
    for prompt_id in required_prompts(profile):
        assert {"wav", "ulaw", "alaw"} <= set(entries[prompt_id]["files"]), prompt_id
        pcm = _pcm(folder / f"{prompt_id}.wav")
        assert (folder / f"{prompt_id}.ulaw").read_bytes() == audioop.lin2ulaw(pcm, 2)
        assert (folder / f"{prompt_id}.alaw").read_bytes() == audioop.lin2alaw(pcm, 2)


def test_the_core_beep_ships_for_asterisk_images_without_core_sounds() -> None:
    entry = load_manifest()["tones"]["beep"]
    beep = AUDIO / builder.CORE / "beep"
    pcm = _pcm(beep.with_suffix(".wav"))
    assert len(pcm) // 2 == 8000 * entry["duration_ms"] // 1000 == 2000
    assert audioop.rms(pcm, 2) > 1000  # a tone, not silence
    assert beep.with_suffix(".alaw").read_bytes() == audioop.lin2alaw(pcm, 2)
    assert beep.with_suffix(".ulaw").read_bytes() == audioop.lin2ulaw(pcm, 2)


def test_a_build_adds_the_alaw_an_older_build_left_out(tmp_path: Path) -> None:
    audio, recorded = tmp_path / "audio", tmp_path / "recorded"
    (recorded / "cmn").mkdir(parents=True)  # a recording, so no synthesizer is needed
    Sine(440).to_audio_segment(600, -20).export(str(recorded / "cmn" / "thanks.wav"), "wav")
    builder.build("cmn", {"thanks": "谢谢。"}, audio=audio, recorded=recorded)
    alaw = audio / "cmn" / "thanks.alaw"
    manifest = load_manifest(audio)
    del manifest["prompts"]["cmn"]["thanks"]["files"]["alaw"]
    builder._save(audio, manifest)
    alaw.unlink()
    again = builder.build("cmn", {"thanks": "谢谢。"}, audio=audio, recorded=recorded)
    assert again.kept == ["thanks"] and again.built == []
    assert alaw.read_bytes() == audioop.lin2alaw(_pcm(audio / "cmn" / "thanks.wav"), 2)
    assert "alaw" in load_manifest(audio)["prompts"]["cmn"]["thanks"]["files"]
    assert builder.build_tones(audio).built == ["beep"]
    assert builder.build_tones(audio).kept == ["beep"]
    # Up to date, it writes nothing (an installed package's folder may be read-only).
    before = {path: path.stat().st_mtime_ns for path in audio.rglob("*")}
    builder.build("cmn", {"thanks": "谢谢。"}, audio=audio, recorded=recorded)
    builder.build_tones(audio)
    assert {path: path.stat().st_mtime_ns for path in audio.rglob("*")} == before


def test_build_failures_name_what_to_fix(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded" / "cmn"
    recorded.mkdir(parents=True)
    (recorded / "hello.wav").write_bytes(b"RIFF but not really a wave file")
    with pytest.raises(PromptError, match=r"recorded/cmn/hello\.wav: not audio"):
        builder.build("cmn", {"hello": "你好"}, audio=tmp_path / "a", recorded=recorded.parent)

    blocked = tmp_path / "b"
    blocked.mkdir()
    (blocked / "cmn").write_text("a file where the folder must go")
    with pytest.raises(PromptError, match=rf"cannot write {blocked / 'cmn'}: File exists"):
        builder.build("cmn", {"x": "好"}, audio=blocked, recorded=tmp_path)

    (blocked / "manifest.json").write_text("{not json")
    with pytest.raises(PromptError, match=r"manifest\.json: cannot read the manifest"):
        builder.build_tones(blocked)
