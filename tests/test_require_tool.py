"""`require_tool`: a test that needs a system tool skips outside CI and fails in CI, naming
the package, as the PostgreSQL and Redis tests do (tests/services.py).

Bad inputs tried: a PATH without the tool, inside and outside CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services import require_tool


def test_a_tool_on_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "espeak-ng"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_tool("espeak-ng") == str(tool)


def test_a_missing_tool_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install espeak-ng"):
        require_tool("espeak-ng")


def test_a_missing_tool_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"`chromium` is not on PATH.*CI must run"):
        require_tool("chromium")
