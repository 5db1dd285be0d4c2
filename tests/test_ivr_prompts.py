"""Voice prompts: the committed audio matches what the flows play, and the builder's output.

Bad inputs tried: a prompt with no text, a language with no synthesizer voice and no
recording, a profile whose reason menu was never built, a recorded prompt in the wrong format
(44.1 kHz stereo with silence around it).
"""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import pytest
from pydub import AudioSegment  # type: ignore[import-untyped]
from pydub.generators import Sine  # type: ignore[import-untyped]

from pingjia.ivr_prompts import PromptsMissing, check_prompts, required_prompts
from prompts import build as builder
from prompts.catalog import AUDIO, PromptError, load_manifest, load_texts, texts_for
from rating.policy.loader import builtin_profiles, load_profile
from tests.services import require_tool


@pytest.mark.parametrize("name", builtin_profiles())
def test_every_prompt_the_flows_play_is_built_for_asterisk(name: str) -> None:
    profile = load_profile(name)
    check_prompts(profile)
    entries = load_manifest()["prompts"][profile.prompt_language]
    texts = texts_for(profile.prompt_language, required_prompts(profile))
    for prompt_id, text in texts.items():
        entry = entries[prompt_id]
        assert entry["text"] == text, f"{prompt_id} is stale: run `pingjia prompts build`"
        for suffix, digest in entry["files"].items():
            data = (AUDIO / profile.prompt_language / f"{prompt_id}.{suffix}").read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{prompt_id}.{suffix}"
        with wave.open(str(AUDIO / profile.prompt_language / f"{prompt_id}.wav")) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000,
                1,
                2,
            )


def test_a_profile_with_unbuilt_prompts_is_named_at_start() -> None:
    profile = load_profile("taishan").model_copy(update={"name": "newcity"})
    with pytest.raises(PromptsMissing, match="reasons_newcity_4, reasons_newcity_5"):
        check_prompts(profile)


def test_pinyin_line_reads_digits_in_mandarin() -> None:
    assert builder.pinyin_line("请按1。") == "qing3 an4 yi1."
    assert load_texts()["cmn"]["level_4"] == "不满意"


def test_build_normalizes_recordings_and_synthesizes_the_rest(tmp_path: Path) -> None:
    require_tool("espeak-ng")  # "thanks" has no recording: it is synthesized
    recorded = tmp_path / "recorded" / "cmn"
    recorded.mkdir(parents=True)
    tone = AudioSegment.silent(800, 44100) + Sine(440).to_audio_segment(1000, -30)
    tone = (tone + AudioSegment.silent(800, 44100)).set_channels(2)
    tone.export(str(recorded / "hello.wav"), format="wav")
    texts = {"hello": "你好", "thanks": "谢谢，再见。"}
    audio = tmp_path / "audio"
    report = builder.build("cmn", texts, audio=audio, recorded=tmp_path / "recorded")
    assert sorted(report.built) == ["hello", "thanks"]
    entries = load_manifest(audio)["prompts"]["cmn"]
    assert entries["hello"]["source"].startswith("recorded:")
    assert 1000 <= entries["hello"]["duration_ms"] < 1400  # the silence was trimmed
    assert entries["thanks"]["pinyin"] == "xie4 xie4, zai4 jian4."
    normalized = AudioSegment.from_wav(str(audio / "cmn" / "hello.wav"))
    assert (normalized.frame_rate, normalized.channels) == (8000, 1)
    assert abs(normalized.dBFS - builder.TARGET_DBFS) < 1.5
    again = builder.build("cmn", texts, audio=audio, recorded=tmp_path / "recorded")
    assert again.built == [] and sorted(again.kept) == ["hello", "thanks"]
    pruned = builder.build(
        "cmn", {"hello": "你好"}, audio=audio, recorded=tmp_path / "recorded", prune=True
    )
    assert pruned.kept == ["hello"] and not (audio / "cmn" / "thanks.wav").exists()


def test_bad_prompt_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="'nowhere' has no text"):
        texts_for("cmn", {"nowhere": None})
    with pytest.raises(ValueError, match="no synthesizer voice for language 'yue'"):
        builder.build("yue", {"hi": "你好"}, audio=tmp_path, recorded=tmp_path)
