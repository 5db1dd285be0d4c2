"""What the `pingjia` command prints and how it exits, as an operator scripts it: quiet by
default, `-v`/`-vv` for more, bad settings named by their environment variable, empty
variables meaning unset, and the exit statuses the README documents (0, 1, 2, 130).

Bad inputs tried: a port that is not a number, an unknown log level, a dial template without
its placeholder, empty variables (as compose files and .env templates leave them), an
unknown option, `--role agency` without `--agency`, an outbox id that does not exist, Ctrl-C
in the middle of a call.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from pingjia import bad_settings
from pingjia.cli import log_level
from pingjia.settings import Settings

TOKEN = re.compile(r"pj_[A-Za-z0-9_-]{40,}\n")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = tmp_path / "empty-bin"  # nothing on PATH: no ffmpeg for pydub to look for
    bin_dir.mkdir(exist_ok=True)
    return {
        "PATH": str(bin_dir),
        "PINGJIA_DATA_DIR": str(tmp_path / "data"),
        "PINGJIA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "PINGJIA_SECRET_KEY": "cli-output-secret",
        **extra,
    }


def run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingjia.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path, **extra),
        timeout=60,
    )


def test_quiet_by_default_and_more_with_v(tmp_path: Path) -> None:
    verbose = run(tmp_path, "token", "create", "--role", "agent", "--name", "a", "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert TOKEN.fullmatch(verbose.stdout)
    assert "Running upgrade" in verbose.stderr  # Alembic's lines, asked for
    quiet = run(tmp_path, "token", "create", "--role", "agent", "--name", "b")
    assert quiet.returncode == 0 and TOKEN.fullmatch(quiet.stdout)
    assert quiet.stderr == ""  # no Alembic, no pydub warning, nothing
    before = run(tmp_path, "-v", "db", "upgrade")  # -v before the command works too
    assert before.returncode == 0 and "Context impl" in before.stderr
    assert "up to date" in before.stdout
    # PINGJIA_LOG_LEVEL=INFO asks for pingjia's lines, not the libraries' chatter.
    info = run(tmp_path, "db", "upgrade", PINGJIA_LOG_LEVEL="INFO")
    assert info.returncode == 0 and "alembic" not in info.stderr


def test_help_prints_no_warning_without_ffmpeg(tmp_path: Path) -> None:
    for args in (["--help"], ["token", "--help"], ["call", "--help"]):
        shown = run(tmp_path, *args)
        assert shown.returncode == 0 and shown.stderr == "", (args, shown.stderr)
        assert "-v, --verbose" in shown.stdout
    assert "130 interrupted" in run(tmp_path, "--help").stdout


def test_bad_settings_are_one_line_each_naming_the_variable(tmp_path: Path) -> None:
    bad = run(tmp_path, "db", "upgrade", PINGJIA_HTTP_PORT="abc", PINGJIA_LOG_LEVEL="loud")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "pingjia: bad setting PINGJIA_HTTP_PORT='abc': Input should be a valid integer, "
        "unable to parse string as an integer",
        "pingjia: bad setting PINGJIA_LOG_LEVEL='loud': unknown log level 'loud'",
    ]
    # A secret's value is never echoed, only what is wrong with it.
    url = run(tmp_path, "db", "upgrade", PINGJIA_AMI_URL="http://admin:hunter2@pbx")
    assert url.returncode == 2 and url.stderr.startswith("pingjia: bad setting PINGJIA_AMI_URL:")
    assert "hunter2" not in url.stderr
    # Dial templates are the IVR part's to parse, at composition: still named, still 2.
    dial = run(tmp_path, "token", "list", PINGJIA_OUTBOUND_DIAL="PJSIP/trunk")
    assert dial.returncode == 2
    assert dial.stderr.startswith("pingjia: bad setting PINGJIA_OUTBOUND_DIAL 'PJSIP/trunk'")
    assert "{number}" in dial.stderr and "Traceback" not in dial.stderr


def test_empty_variables_mean_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PINGJIA_REDIS_URL", "PINGJIA_HTTP_PORT", "PINGJIA_SMS_PROVIDER", "PINGJIA_BIND"):
        monkeypatch.setenv(name, "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.redis_url is None and settings.http_port == 8080
    assert settings.sms_provider == "console" and settings.bind == "127.0.0.1"
    made = run(
        tmp_path,
        "token",
        "create",
        "--role",
        "agent",
        "--name",
        "x",
        PINGJIA_REDIS_URL="",
        PINGJIA_SECRET_KEY="",
        PINGJIA_PROFILE="",
    )
    assert made.returncode == 0 and TOKEN.fullmatch(made.stdout), made.stderr


def test_exit_statuses(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    unknown = run(tmp_path, "outbox", "retry", "--id", "999")
    assert unknown.returncode == 1 and "999" in unknown.stdout + unknown.stderr
    usage = run(tmp_path, "token", "create", "--role", "agent")
    assert usage.returncode == 2 and "the following arguments are required: --name" in (
        usage.stderr
    )
    agency = run(tmp_path, "token", "create", "--role", "agency", "--name", "scj")
    assert agency.returncode == 2
    # The subcommand's own usage, not the top-level one.
    assert agency.stderr.startswith("usage: pingjia token create ")
    assert "pingjia token create: error: --role agency needs --agency NAME" in agency.stderr


def test_ctrl_c_is_130_without_a_traceback(tmp_path: Path) -> None:
    """A softphone waiting on a FastAGI server that never answers, interrupted."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        silent.settimeout(30)
        port = silent.getsockname()[1]
        caller = subprocess.Popen(
            [sys.executable, "-m", "pingjia.cli", "call", "--keys", "1", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_env(tmp_path),
        )
        connection, _ = silent.accept()  # it is waiting for the server's first command
        with connection:
            caller.send_signal(signal.SIGINT)
            _out, err = caller.communicate(timeout=30)
    assert caller.returncode == 130
    assert err.strip().splitlines()[-1] == "pingjia: interrupted" and "Traceback" not in err


@pytest.mark.parametrize(
    ("command", "level", "verbosity", "expected"),
    [
        ("token", None, 0, "WARNING"),
        ("serve", None, 0, "INFO"),
        ("scheduler", None, 0, "INFO"),
        ("token", None, 1, "INFO"),
        ("token", None, 2, "DEBUG"),
        ("serve", "ERROR", 0, "ERROR"),
        ("token", "ERROR", 0, "ERROR"),
        ("serve", "ERROR", 1, "INFO"),
        ("token", "DEBUG", 1, "DEBUG"),
    ],
)
def test_log_level_of_each_command(
    tmp_path: Path, command: str, level: str | None, verbosity: int, expected: str
) -> None:
    values = {"log_level": level} if level else {}
    settings = Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[call-arg, arg-type]
    assert log_level(settings, command, verbosity) == expected


def test_another_parts_settings_block_is_named_by_its_model() -> None:
    """A part's own settings block (read at composition) is not guessed into a PINGJIA_ name."""

    class TencentBlock(BaseModel):
        region: int
        secret_key: int

    with pytest.raises(ValidationError) as error:
        TencentBlock(region="gz", secret_key="s3cr3t")  # type: ignore[arg-type]
    lines = bad_settings.describe(error.value)
    assert lines[0].startswith("TencentBlock.region='gz': Input should be a valid integer")
    assert lines[1].startswith("TencentBlock.secret_key: ") and "s3cr3t" not in lines[1]
