"""The articles of the two city regulations that bind the software (issue 17, item 6).

Tests that prove an article carry `@pytest.mark.article(city, number)`; conftest.py checks
every use against ARTICLES at collection, so a typo fails the run instead of hiding a gap,
and tests/test_regulations_doc.py checks that each article has a test and that
docs/regulations.md names them.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

# The seeds are in ../shared/seeds/: 000_… is Sanmenxia's 管理办法, 003_… is Taishan's 实施细则.
ARTICLES: dict[str, frozenset[int]] = {
    "sanmenxia": frozenset({4, 8, 10, 12, 14, 15, 16, 19}),
    "taishan": frozenset({4, 10, 11, 15, 16, 17, 19, 20, 21, 22, 23, 25}),
}


def article_error(mark: pytest.Mark) -> str | None:
    """Why one `article` mark is wrong, or None when it names a listed article."""
    if mark.kwargs or len(mark.args) != 2:
        return f"takes exactly (city, number), got args={mark.args!r} kwargs={mark.kwargs!r}"
    city, number = mark.args
    if city not in ARTICLES:
        return f"unknown city {city!r}; one of {', '.join(sorted(ARTICLES))}"
    if type(number) is not int or number not in ARTICLES[city]:
        listed = ", ".join(str(n) for n in sorted(ARTICLES[city]))
        return f"{city} has no listed article {number!r}; listed: {listed}"
    return None


def articles_of(item: pytest.Item) -> set[tuple[str, int]]:
    """The (city, number) pairs a collected test proves."""
    return {(m.args[0], m.args[1]) for m in item.iter_markers("article")}


def _where(item: pytest.Item) -> str:
    # A file outside the rootdir has a node id without its path.
    return item.nodeid if not item.nodeid.startswith("::") else f"{item.path}::{item.name}"


def check_items(items: Iterable[pytest.Item]) -> None:
    """Fail the collection (a usage error) on any malformed or unknown article mark."""
    problems = [
        f"{_where(item)}: @pytest.mark.article {error}"
        for item in items
        for mark in item.iter_markers("article")
        if (error := article_error(mark)) is not None
    ]
    if problems:
        raise pytest.UsageError("bad article marks:\n" + "\n".join(sorted(set(problems))))
