"""The `pingjia` command as a user runs it, and the README that tells them how.

Bad inputs tried: an unknown role, a bad port in the environment, a profile file that does not
exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pingjia.settings import env_names

ROOT = Path(__file__).resolve().parent.parent


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "PINGJIA_DATA_DIR": str(tmp_path / "data"),
        "PINGJIA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "PINGJIA_LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "pingjia.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
    )


def test_token_create_prints_a_token_and_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    created = run(tmp_path, "token", "create", "--role", "bureau", "--name", "市政数局")
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"pj_[A-Za-z0-9_-]{40,}\n", created.stdout)
    assert "generated a new secret key" in created.stderr
    assert (tmp_path / "data" / "secret.key").exists()
    for _ in range(2):
        upgraded = run(tmp_path, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert "up to date" in upgraded.stdout


def test_bad_input_is_a_clear_message(tmp_path: Path) -> None:
    role = run(tmp_path, "token", "create", "--role", "root", "--name", "x")
    assert role.returncode == 2 and "invalid choice: 'root'" in role.stderr
    port = run(tmp_path, "db", "upgrade", PINGJIA_HTTP_PORT="eighty")
    assert port.returncode == 2
    assert port.stderr.startswith("pingjia: bad setting PINGJIA_HTTP_PORT='eighty': ")
    profile = run(tmp_path, "db", "upgrade", PINGJIA_PROFILE=str(tmp_path / "nowhere.toml"))
    # db upgrade needs no profile; token create loads it and names the missing file.
    assert profile.returncode == 0
    token = run(
        tmp_path,
        "token",
        "create",
        "--role",
        "agent",
        "--name",
        "x",
        PINGJIA_PROFILE=str(tmp_path / "nowhere.toml"),
    )
    assert token.returncode == 2 and "nowhere.toml" in token.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    shown = run(tmp_path, "--help")
    assert shown.returncode == 0
    for command in ("serve", "token", "db"):
        assert command in shown.stdout


def test_readme_starts_with_the_two_commands_and_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    assert "pingjia serve" in blocks[0] and "pip install" in blocks[0]
    assert "pytest" in blocks[1] and "pip install" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1].strip() in ci, ".ci/run must run the README's test command"
    for variable in env_names().values():
        assert f"`{variable}`" in readme, f"{variable} is missing from the README's settings table"


@pytest.mark.parametrize("name", ["taishan", "sanmenxia"])
def test_each_builtin_profile_starts(tmp_path: Path, name: str) -> None:
    created = run(
        tmp_path, "token", "create", "--role", "agent", "--name", "x", PINGJIA_PROFILE=name
    )
    assert created.returncode == 0, created.stderr
