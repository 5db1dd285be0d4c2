"""The contract section of docs/architecture.md, drawn from pyproject.toml's import-linter
contracts, so the document says what `lint-imports` checks.

`python -m tests.architecture_doc` rewrites the section between its two markers;
tests/test_architecture_doc.py fails when the document and the contracts differ.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
DOC = ROOT / "docs" / "architecture.md"
BEGIN = (
    "<!-- contracts: generated from pyproject.toml by `python -m tests.architecture_doc`;"
    " tests/test_architecture_doc.py fails when they differ -->"
)
END = "<!-- contracts: end -->"
SECTION = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def importlinter(pyproject: Path = PYPROJECT) -> dict[str, Any]:
    with pyproject.open("rb") as f:
        config: dict[str, Any] = tomllib.load(f)["tool"]["importlinter"]
    return config


def _modules(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _layer(layer: str) -> str:
    """One layer as written in the contract: `a | b` are siblings that may not import each
    other, `a : b` siblings that may."""
    if "|" in layer:
        return " \\| ".join(f"`{n.strip()}`" for n in layer.split("|")) + " (independent)"
    if ":" in layer:
        return " : ".join(f"`{n.strip()}`" for n in layer.split(":"))
    return f"`{layer.strip()}`"


def rule(contract: dict[str, Any]) -> str:
    """What the contract checks, in words, from its fields alone."""
    kind = contract["type"]
    if kind == "layers":
        where = ""
        if contract.get("containers"):
            where = f" inside {_modules(contract['containers'])}"
        floors = " → ".join(_layer(layer) for layer in contract["layers"])
        order = "top to bottom (an upper one may import a lower, never back)"
        return f"layers{where}, {order}: {floors}"
    if kind == "forbidden":
        how = "directly" if contract.get("allow_indirect_imports") else "directly or indirectly"
        return (
            f"forbidden: {_modules(contract['source_modules'])} may not import "
            f"{_modules(contract['forbidden_modules'])} ({how})"
        )
    if kind == "acyclic_siblings":
        return (
            f"acyclic: no import cycle between the sub-packages (nor the modules) under "
            f"{_modules(contract['ancestors'])}"
        )
    raise ValueError(f"contract {contract['id']!r}: no words for type {kind!r}")


def render(config: dict[str, Any]) -> str:
    """The generated section: the root packages, then one row per contract."""
    lines = [
        f"Root packages: {_modules(config['root_packages'])}.",
        "",
        "| contract | says | checks | exceptions (`ignore_imports`) |",
        "| --- | --- | --- | --- |",
    ]
    for contract in config["contracts"]:
        ignored = _modules(contract.get("ignore_imports", [])) or "none"
        lines.append(f"| `{contract['id']}` | {contract['name']} | {rule(contract)} | {ignored} |")
    return "\n".join(lines) + "\n"


def section(text: str) -> str:
    """The generated section as the document has it now."""
    found = SECTION.search(text)
    if found is None:
        raise ValueError(f"{DOC.name}: no contract section between its markers")
    return found.group(1)


def rewritten(text: str, config: dict[str, Any]) -> str:
    section(text)  # the markers must be there
    return SECTION.sub(lambda _: f"{BEGIN}\n{render(config)}{END}", text, count=1)


def main() -> int:
    text = DOC.read_text("utf-8")
    new = rewritten(text, importlinter())
    if new != text:
        DOC.write_text(new, "utf-8")
        print(f"{DOC.relative_to(ROOT)}: contract section rewritten")
    else:
        print(f"{DOC.relative_to(ROOT)}: contract section up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
