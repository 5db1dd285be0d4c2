"""The article marks (issue 17, item 6): every use names a listed article, every listed
article has a test, and docs/regulations.md names tests that exist and carry that mark.

Bad inputs tried: a mark with a city that does not exist, an article number that is not
listed (or listed for the other city), a number given as a string, a missing or extra
argument, a keyword argument; and a whole collection with a typo in a mark.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.regulations import ARTICLES, article_error

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "regulations.md"
SECTION = re.compile(r"^### .*\((sanmenxia|taishan) (\d+)\)\s*$", re.M)
TEST_NAME = re.compile(r"`(tests/[\w/]+\.py::\w+)`")

Article = tuple[str, int]


@pytest.mark.parametrize(
    ("args", "kwargs", "fault"),
    [
        (("tai_shan", 20), {}, "unknown city"),
        (("taishan", 24), {}, "no listed article 24"),
        (("sanmenxia", 23), {}, "no listed article 23"),
        (("taishan", "20"), {}, "no listed article '20'"),
        (("taishan", True), {}, "no listed article True"),
        (("taishan",), {}, "exactly (city, number)"),
        (("taishan", 20, 21), {}, "exactly (city, number)"),
        (("taishan",), {"number": 20}, "exactly (city, number)"),
    ],
)
def test_bad_article_marks_are_named(
    args: tuple[object, ...], kwargs: dict[str, object], fault: str
) -> None:
    error = article_error(pytest.mark.article(*args, **kwargs).mark)
    assert error is not None and fault in error


def test_every_listed_article_is_a_good_mark() -> None:
    for city, numbers in ARTICLES.items():
        for number in numbers:
            assert article_error(pytest.mark.article(city, number).mark) is None


def _collect(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_typo_in_a_mark_fails_the_collection(tmp_path: Path) -> None:
    (tmp_path / "test_typo.py").write_text(
        "import pytest\n\n\n"
        '@pytest.mark.article("taishan", 20)\n'
        '@pytest.mark.article("taishan", 24)\n'
        "def test_x() -> None:\n    assert True\n",
        encoding="utf-8",
    )
    done = _collect(
        "-c", str(ROOT / "pyproject.toml"), "-p", "tests.conftest", str(tmp_path / "test_typo.py")
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "test_typo.py::test_x: @pytest.mark.article taishan has no listed article 24" in (
        done.stderr
    )


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[Article]]:
    """Every collected test of the suite (by function) and the articles it is marked with."""
    report = tmp_path_factory.mktemp("articles") / "report.json"
    done = _collect("-p", "tests.article_report", env={"PINGJIA_ARTICLE_REPORT": str(report)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    raw: dict[str, list[list[object]]] = json.loads(report.read_text("utf-8"))
    return {name: {(str(c), int(str(n))) for c, n in pairs} for name, pairs in raw.items()}


def doc_sections() -> dict[Article, set[str]]:
    """docs/regulations.md: the tests each article's section names."""
    text = DOC.read_text("utf-8")
    found = list(SECTION.finditer(text))
    sections: dict[Article, set[str]] = {}
    for here, after in zip(found, [*found[1:], None], strict=True):
        body = text[here.end() : after.start() if after else len(text)]
        key = (here[1], int(here[2]))
        assert key not in sections, f"two sections for {key}"
        sections[key] = set(TEST_NAME.findall(body))
    return sections


def test_every_listed_article_has_a_marked_test(marked: dict[str, set[Article]]) -> None:
    proven = set().union(*marked.values())
    missing = [(c, n) for c, numbers in ARTICLES.items() for n in sorted(numbers)]
    assert [a for a in missing if a not in proven] == []


def test_the_doc_names_exactly_the_marked_tests_of_each_article(
    marked: dict[str, set[Article]],
) -> None:
    sections = doc_sections()
    listed = {(c, n) for c, numbers in ARTICLES.items() for n in numbers}
    assert set(sections) == listed, "docs/regulations.md: one section per listed article"
    for article, named in sorted(sections.items()):
        assert named, f"{article}: the section names no test"
        unknown = sorted(n for n in named if n not in marked)
        assert unknown == [], f"{article}: no such tests {unknown}"
        unmarked = sorted(n for n in named if article not in marked[n])
        assert unmarked == [], f"{article}: named but not marked {unmarked}"
        carrying = {name for name, articles in marked.items() if article in articles}
        assert sorted(carrying - named) == [], f"{article}: marked but not in the doc"


def test_dash_m_article_selects_every_marked_test(marked: dict[str, set[Article]]) -> None:
    done = _collect("-m", "article")
    assert done.returncode == 0, done.stderr[-2000:]
    selected = {line.split("[", 1)[0] for line in done.stdout.splitlines() if "::" in line}
    assert selected == {name for name, articles in marked.items() if articles}
