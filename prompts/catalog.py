"""The prompt texts (prompts/prompts.toml) and the built audio's manifest, read and checked."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEXTS = HERE / "prompts.toml"
AUDIO = HERE / "audio"
RECORDED = HERE / "recorded"
MANIFEST = "manifest.json"
PROMPT_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class PromptError(ValueError):
    """A prompt is missing or malformed; the message names it."""


def load_texts(path: Path = TEXTS) -> dict[str, dict[str, str]]:
    """language -> prompt id -> text."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PromptError(f"{path}: {exc}") from None
    texts: dict[str, dict[str, str]] = {}
    for language, table in data.items():
        if not isinstance(table, dict):
            raise PromptError(f"{path}: [{language}] must be a table of id = text")
        for prompt_id, text in table.items():
            if not PROMPT_ID.match(prompt_id) or not isinstance(text, str) or not text.strip():
                raise PromptError(f"{path}: {language}.{prompt_id}: needs a lowercase id and text")
        texts[language] = dict(table)
    return texts


def load_manifest(audio: Path = AUDIO) -> dict[str, Any]:
    path = audio / MANIFEST
    if not path.exists():
        return {"prompts": {}}
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromptError(
            f"{path}: cannot read the manifest ({exc}); restore it from git, or delete it and "
            "run `pingjia prompts build --force`"
        ) from None
    return manifest


def missing_audio(language: str, prompt_ids: list[str], audio: Path = AUDIO) -> list[str]:
    """The prompt ids that have no built WAV for `language`, sorted."""
    return sorted(i for i in prompt_ids if not (audio / language / f"{i}.wav").is_file())


def texts_for(language: str, required: dict[str, str | None]) -> dict[str, str]:
    """The text of every prompt: from prompts.toml, or the one a flow wrote (reason menus)."""
    table = load_texts().get(language, {})
    resolved: dict[str, str] = {}
    for prompt_id, text in required.items():
        found = table.get(prompt_id, text)
        if found is None:
            raise PromptError(f"prompt {prompt_id!r} has no text in prompts.toml [{language}]")
        resolved[prompt_id] = found
    return resolved
