"""The catalogue of words people read (rating/words.py) against the code that raises refusals.

The source is read with `ast`: every call of a DomainError class (raised or built to be
raised) names a code (its `code=` or the class's own), and that code must have a Chinese
template whose parameters the call gives in its `params={...}`. A template that shows the
positional text alone (`{detail}`) needs that text in Chinese; one that follows a Chinese
lead with it (bad_settings: the environment variable an operator must fix) may not.
Templates themselves show no ASCII identifier. Bad inputs tried: an unknown code, a template
with a missing parameter, a list parameter, an empty list.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from rating.errors import Conflict, DomainError, InvalidInput, NotFound
from rating.policy.loader import load_profile
from rating.words import DEADLINES, REFUSALS, actor_name, refusal, template_fields

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rating", "pingjia", "console", "ivr", "sms", "bridge", "scheduler", "prompts")
CJK = re.compile("[\u4e00-\u9fff]")
# In a template: snake_case, or a lowercase English word (an identifier or a sentence).
ASCII_WORD = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b|\b[a-z]{3,}\b")


@dataclass(frozen=True)
class Site:
    where: str
    code: str | None  # None: not a literal the scan can read
    params: frozenset[str] | None  # None: not a literal dict
    detail: ast.expr | None


def _sources() -> list[Path]:
    return [
        p
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in p.parts
    ]


def _error_classes(trees: dict[Path, ast.Module]) -> dict[str, str]:
    """Every DomainError class by name, with its own code (inherited when it sets none)."""
    found = {"DomainError": "domain_error"}
    changed = True
    while changed:
        changed = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef) or node.name in found:
                    continue
                bases = [b.id for b in node.bases if isinstance(b, ast.Name) and b.id in found]
                if not bases:
                    continue
                code = found[bases[0]]
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and isinstance(item.targets[0], ast.Name)
                        and item.targets[0].id == "code"
                        and isinstance(item.value, ast.Constant)
                    ):
                        code = item.value.value
                found[node.name] = code
                changed = True
    return found


def _constants(tree: ast.Module) -> dict[str, str]:
    return {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name) and isinstance(node.value.value, str)
    }


def raise_sites() -> list[Site]:
    trees = {p: ast.parse(p.read_text("utf-8")) for p in _sources()}
    classes = _error_classes(trees)
    sites = []
    for path, tree in trees.items():
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in classes
            ):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            code: str | None = classes[node.func.id]
            if "code" in keywords:
                value = keywords["code"]
                if isinstance(value, ast.Constant):
                    code = value.value
                elif isinstance(value, ast.Name):
                    code = constants.get(value.id)
                else:
                    code = None
            params: frozenset[str] | None = frozenset()
            if "params" in keywords:
                given = keywords["params"]
                if isinstance(given, ast.Dict) and all(
                    isinstance(k, ast.Constant) for k in given.keys
                ):
                    params = frozenset(k.value for k in given.keys if isinstance(k, ast.Constant))
                else:
                    params = None
            sites.append(
                Site(
                    f"{path.relative_to(ROOT)}:{node.lineno}",
                    code,
                    params,
                    node.args[0] if node.args else None,
                )
            )
    return sites


SITES = raise_sites()


def test_the_scan_finds_the_refusals_it_must() -> None:
    codes = {s.code for s in SITES}
    # The issue's own list, so a scan that silently finds nothing cannot pass.
    for code in (
        "unstorable_text",
        "idempotency_key_reused",
        "invalid_idempotency_key",
        "completed_in_future",
        "unknown_agency",
        "token_not_found",
        "ambiguous_token",
        "call_in_progress",
        "ami_unavailable",
        "illegal_transition",
        "not_appealable",
    ):
        assert code in codes, code
    assert len(SITES) > 60


def test_every_raised_code_has_a_chinese_template_with_its_parameters() -> None:
    problems = []
    for site in SITES:
        if site.code is None:
            problems.append(f"{site.where}: the code is not a literal")
            continue
        template = REFUSALS.get(site.code)
        if template is None:
            problems.append(f"{site.where}: no catalogue entry for {site.code!r}")
            continue
        if site.params is None:
            problems.append(f"{site.where}: params is not a literal dict")
            continue
        missing = template_fields(template) - site.params - {"detail"}
        if missing:
            problems.append(f"{site.where}: {site.code} needs params {sorted(missing)}")
        if template == "{detail}":
            text = ast.unparse(site.detail) if site.detail is not None else ""
            if not CJK.search(text):
                problems.append(f"{site.where}: {site.code} shows its text, which is not Chinese")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_templates_are_chinese_and_name_no_identifier(code: str) -> None:
    template = REFUSALS[code]
    assert CJK.search(template) or template == "{detail}", code
    # Parameters are values; a command-line option (--force) is what an operator types.
    text = re.sub(r"\{[a-z_]+\}|--[a-z-]+", "", template)
    assert not ASCII_WORD.findall(text), (code, template)


def test_a_refusal_renders_its_parameters_by_their_chinese_names() -> None:
    error = Conflict(
        "a ticket in status dispatched cannot close",
        code="illegal_transition",
        params={"status": "dispatched", "action": "close", "actions": ["confirm", "not_adopt"]},
    )
    assert error.code == "illegal_transition" and error.status == 409
    assert error.params["status"] == "dispatched"  # the stable value stays for machines
    assert error.message == (
        "工单当前状态为「已转办」，不能办理「办结」；现在可以办理：核实属实、核实不予采纳。"
    )
    assert error.detail.startswith("a ticket in status")
    empty = refusal("illegal_transition", {"status": "closed", "action": "close", "actions": []})
    assert empty.endswith("现在可以办理：无。")
    kinds = {"allowed_kinds": ["staff"], "found_kinds": []}
    assert refusal("not_appealable", kinds) == (
        "本市规定只有涉及工作人员的差评可以核实不予采纳；此评价的原因涉及：无。"
    )


def test_unknown_codes_and_missing_parameters_fall_back_instead_of_failing() -> None:
    assert InvalidInput("some developer note", code="no_such_code").message == "some developer note"
    assert NotFound(code="ticket_not_found").message == REFUSALS["domain_error"]
    # A template whose parameter is missing never raises KeyError at a user.
    assert refusal("ticket_not_found", {}) == REFUSALS["domain_error"]
    assert DomainError().message == "操作未能完成。"


def test_every_profile_deadline_has_a_name() -> None:
    for name in ("taishan", "sanmenxia"):
        profile = load_profile(name)
        for rule in profile.ticket_deadlines:
            assert rule.name in DEADLINES, (name, rule.name)
            assert DEADLINES[rule.name] == str(rule.title), (name, rule.name)


def test_actors_read_as_roles_and_names() -> None:
    assert actor_name("agency:市场监管局甲") == "承办单位 市场监管局甲"
    assert actor_name("scheduler") == "系统定时任务"
    assert actor_name("somebody") == "somebody"
