"""The article marks (issue 17, item 6): every use names a listed article, every listed
article has a test, and docs/regulations.md names tests that exist and carry that mark.

Bad inputs tried: a mark with a city that does not exist, an article number that is not
listed (or listed for the other city), a number given as a string, a missing or extra
argument, a keyword argument; and a whole collection with a typo in a mark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.regulations import ARTICLES, article_error

ROOT = Path(__file__).resolve().parent.parent


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
