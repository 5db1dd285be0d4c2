"""A pytest plugin for tests/test_regulations_doc.py: after collection, write which tests
carry which `article` marks as JSON to the file named by PINGJIA_ARTICLE_REPORT."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.regulations import articles_of


def pytest_collection_finish(session: pytest.Session) -> None:
    target = os.environ.get("PINGJIA_ARTICLE_REPORT")
    if not target:
        return
    report: dict[str, list[list[object]]] = {}
    for item in session.items:
        # A parametrized test is named once, by its function: tests/test_x.py::test_y
        name = item.nodeid.split("[", 1)[0]
        pairs = {tuple(p) for p in report.get(name, [])} | articles_of(item)
        report[name] = sorted([list(p) for p in pairs], key=str)
    Path(target).write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
