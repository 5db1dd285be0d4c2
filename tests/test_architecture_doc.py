"""docs/architecture.md says what `lint-imports` checks, and the contracts cover every part.

The contract section is drawn from pyproject.toml (tests/architecture_doc.py); these tests fail
when it drifts, when a new top-level package or domain room escapes the contracts, or when the
domain gains a file named after a channel.

Bad inputs tried: a document without the markers, a contract of a type with no words, a
contract changed in the configuration (the section no longer matches), a layer of
non-independent siblings.
"""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import pytest

from tests.architecture_doc import (
    BEGIN,
    DOC,
    END,
    PYPROJECT,
    ROOT,
    importlinter,
    render,
    rewritten,
    rule,
    section,
)

# Names a channel goes by (rating/policy/levels.py's CHANNELS, and their transports).
CHANNEL_WORDS = ("ivr", "agi", "ami", "survey", "sms", "smpp", "twilio", "web", "page", "call")
FACE, DOMAIN, TOOLING = "pingjia", "rating", "asterisk_sim"


def contracts() -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in importlinter()["contracts"]}


def names(layer: str) -> set[str]:
    return {n.strip() for n in re.split(r"[|:]", layer)}


def test_the_document_shows_the_contracts_as_configured() -> None:
    text = DOC.read_text("utf-8")
    assert section(text) == render(importlinter()), "run: python -m tests.architecture_doc"
    assert rewritten(text, importlinter()) == text


def test_a_changed_contract_makes_the_document_stale() -> None:
    config = copy.deepcopy(importlinter())
    config["contracts"][0]["layers"].append("newfloor")
    text = DOC.read_text("utf-8")
    assert section(text) != render(config)
    new = rewritten(text, config)
    assert "`newfloor`" in section(new) and new.count(BEGIN) == new.count(END) == 1


def test_a_document_without_markers_or_an_unknown_contract_type_is_refused() -> None:
    with pytest.raises(ValueError, match="no contract section"):
        section("# Architecture\n\nno markers here\n")
    with pytest.raises(ValueError, match="no words for type 'independence'"):
        rule({"id": "x", "type": "independence", "modules": ["a", "b"]})


def test_layers_say_which_siblings_are_independent() -> None:
    described = rule({"id": "x", "type": "layers", "layers": ["a | b", "c : d", "e"]})
    assert described.endswith("`a` \\| `b` (independent) → `c` : `d` → `e`")


def test_every_package_is_a_root_of_the_contracts() -> None:
    with PYPROJECT.open("rb") as f:
        tool = tomllib.load(f)["tool"]
    built = {p.rstrip("*") for p in tool["setuptools"]["packages"]["find"]["include"]}
    roots = set(importlinter()["root_packages"])
    assert built == roots == set(tool["mypy"]["packages"])


def test_every_part_is_a_sibling_in_the_middle_and_the_domain_knows_none() -> None:
    roots = set(importlinter()["root_packages"])
    parts = roots - {FACE, DOMAIN, TOOLING}
    layers = contracts()["layers"]["layers"]
    assert [names(layer) for layer in layers] == [{FACE}, parts, {DOMAIN}]
    assert "|" in layers[1] and ":" not in layers[1]  # side by side and independent
    assert "ignore_imports" not in contracts()["layers"]
    knows_none = contracts()["domain-knows-no-channel"]
    assert knows_none["source_modules"] == [DOMAIN]
    assert set(knows_none["forbidden_modules"]) == roots - {DOMAIN, TOOLING}
    apart = contracts()["tooling-apart"]
    assert set(apart["source_modules"]) == roots - {FACE, TOOLING}
    assert apart["forbidden_modules"] == [TOOLING]


def test_every_domain_room_is_on_a_floor_and_in_the_document() -> None:
    rooms = {
        p.stem if p.suffix == ".py" else p.name
        for p in (ROOT / DOMAIN).iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    floors = contracts()["domain-floors"]
    assert floors["containers"] == [DOMAIN]
    on_floors = set().union(*(names(layer) for layer in floors["layers"]))
    assert on_floors == rooms
    text = DOC.read_text("utf-8")
    for room in rooms:
        assert f"`rating/{room}" in text, room
    for root in importlinter()["root_packages"]:
        assert f"{root}/" in text, root


def test_no_file_in_the_domain_is_named_after_a_channel() -> None:
    # Alembic revision files keep the names of their revision ids (0002_ivr, 0003_sms, ...):
    # those ids are written in every existing database's alembic_version, so they are history.
    versions = ROOT / DOMAIN / "db" / "migrations" / "versions"
    named = [
        str(p.relative_to(ROOT))
        for p in (ROOT / DOMAIN).rglob("*")
        if versions not in p.parents
        and "__pycache__" not in p.parts
        and any(word in re.split(r"[_./]", p.name) for word in CHANNEL_WORDS)
    ]
    assert named == []
