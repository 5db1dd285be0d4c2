"""The wheel a site installs (and the Dockerfile installs): every file under the packages is in
it, and installed outside the source tree it serves, rates a call and shows the console.

Bad inputs tried on the installed `pingjia prompts build`: a rebuild with no espeak-ng on PATH,
a file standing where the audio folder must be written, a prompts.toml that is not TOML.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from fnmatch import fnmatch
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, build_opener

import pytest

from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent
# What never belongs in a wheel, though it may sit in a package folder of a checkout.
NOT_SHIPPED = {".gitkeep"}


def _site_packages(python: Path) -> Path:
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


def _context(into: Path) -> Path:
    """A copy of the checkout less what .dockerignore names: what `docker build` sees. Building
    there also keeps setuptools' build/ folder, whose stale copies of moved or deleted files
    would otherwise end up in the wheel, out of the source tree."""
    patterns = [
        line.strip().removeprefix("**/")
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(_folder: str, names: list[str]) -> set[str]:
        return {name for name in names if any(fnmatch(name, p) for p in patterns)}

    context = into / "context"
    shutil.copytree(ROOT, context, ignore=ignored)
    return context


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` in the build context, as the Dockerfile's first stage builds it (isolated
    build: setuptools comes from the configured index or pip's cache, as in `pip install .`)."""
    out = tmp_path_factory.mktemp("dist")
    context = _context(out)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("pingjia-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the source tree with only the wheel installed; its
    `bin/` folder is returned.

    The wheel goes in with the suite's pip (`pip --python`) while the environment is still
    empty, so pip sees no other pingjia. Only then does a `.pth` line add the suite's own
    site-packages for the dependencies (aiohttp, SQLAlchemy, …): offline and in a second,
    where installing them would need the network and minutes. A path line in a `.pth` adds
    that one folder and does not run the `.pth` files inside it, so the source tree's editable
    install does not come along, and the new environment's own site-packages comes first.
    """
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    site = _site_packages(python)
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "_pingjia_test_dependencies.pth").write_text("\n".join(deps) + "\n", "utf-8")
    return home / "bin"


def _package_files() -> list[str]:
    """Every file under the packages pyproject.toml ships, as a path relative to the root."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    roots = sorted({p.rstrip("*") for p in patterns})
    files = []
    for top in roots:
        for path in sorted((ROOT / top).rglob("*")):
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and path.name not in NOT_SHIPPED
                and path.suffix != ".pyc"
            ):
                files.append(path.relative_to(ROOT).as_posix())
    return files


def test_every_file_of_the_packages_is_in_the_wheel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _package_files()
    assert "prompts/prompts.toml" in expected and "rating/db/migrations/script.py.mako" in expected
    assert any(name.startswith("prompts/audio/cmn/") for name in expected)
    missing = [name for name in expected if name not in names]
    assert not missing, f"files the wheel leaves out (pyproject.toml package-data): {missing}"
    assert not [n for n in names if n.startswith(("tests/", "bench/", "docs/"))]


def _env(run_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(run_dir),
        "PINGJIA_HTTP_PORT": str(free_port()),
        "PINGJIA_AGI_PORT": str(free_port()),
        "PINGJIA_SECRET_KEY": "wheel-test-secret",
        "PINGJIA_LOG_LEVEL": "INFO",
    }


def _run(
    bin_dir: Path, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "pingjia"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """`pingjia serve` of the installed wheel, started from an empty folder."""
    run_dir = tmp_path / "site"
    run_dir.mkdir()
    env = _env(run_dir)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(installed / "pingjia"), "serve"],
        env=env,
        cwd=run_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 40
    while True:
        try:
            socket.create_connection(("127.0.0.1", int(env["PINGJIA_HTTP_PORT"])), 0.2).close()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
    yield env, run_dir
    process.terminate()
    process.wait(10)
    log.close()


def test_the_installed_wheel_serves_rates_a_call_and_shows_the_console(
    installed: Path, served: tuple[dict[str, str], Path]
) -> None:
    env, run_dir = served
    where = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import console, pingjia, prompts.catalog as c, rating, sms; "
            "print(console.__file__, pingjia.__file__, c.AUDIO, rating.__file__, sms.__file__)",
        ],
        env=env,
        cwd=run_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    site = str(_site_packages(installed / "python"))
    for path in where.stdout.split():
        assert path.startswith(site), f"{path} is not the installed copy"

    token = _run(installed, env, run_dir, "token", "create", "--role", "admin", "--name", "wheel")
    assert token.returncode == 0, token.stderr
    rated = _run(
        installed,
        {**env, "PINGJIA_LOG_LEVEL": "WARNING", "PINGJIA_TOKEN": token.stdout.strip()},
        run_dir,
        "call",
        "--keys",
        "4,1,#",
    )
    assert rated.returncode == 0, rated.stdout + rated.stderr
    assert "不满意 (level 4) via ivr, tags ['staff_passive']" in rated.stdout, rated.stdout
    assert "  ticket " in rated.stdout
    base = f"http://127.0.0.1:{env['PINGJIA_HTTP_PORT']}"
    browser = build_opener(HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{base}/console", timeout=10) as signin:  # redirected to sign in
        assert signin.status == 200 and signin.url.endswith("/console/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.read().decode())
    assert csrf is not None
    form = urlencode({"csrf": csrf.group(1), "token": token.stdout.strip()}).encode()
    with browser.open(f"{base}/console/signin", data=form, timeout=10) as queue:
        page = queue.read().decode()
    assert queue.status == 200 and queue.url.endswith("/console/tickets")
    assert "不满意" in page and "IVR-" in page, page


def test_prompts_build_of_the_installed_wheel_is_one_clear_line(
    installed: Path, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    # Run from tmp_path: `python -c` puts the working folder first on sys.path, and from the
    # checkout it would import (and this test would then damage) the source tree's prompts.
    audio = Path(
        subprocess.run(
            [str(installed / "python"), "-c", "import prompts.catalog as c; print(c.AUDIO)"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert audio.is_relative_to(_site_packages(installed / "python")), audio
    up_to_date = _run(installed, env, tmp_path, "prompts", "build")
    assert up_to_date.returncode == 0, up_to_date.stderr
    assert " 0 built, " in up_to_date.stdout and "alaw" in up_to_date.stdout

    no_tools = {**env, "PATH": str(tmp_path / "empty-bin")}  # no espeak-ng, no ffmpeg
    forced = _run(installed, no_tools, tmp_path, "prompts", "build", "--force")
    assert forced.returncode == 1
    assert "Traceback" not in forced.stderr
    assert forced.stderr.strip().splitlines()[-1].startswith("pingjia prompts build: ")
    assert "espeak-ng is not installed" in forced.stderr

    cmn = audio / "cmn"
    cmn.rename(tmp_path / "cmn-saved")
    cmn.write_text("not a folder")  # a file where the built prompts must go
    try:
        blocked = _run(installed, env, tmp_path, "prompts", "build")
    finally:
        cmn.unlink()
        (tmp_path / "cmn-saved").rename(cmn)
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr
    assert f"cannot write {cmn}" in blocked.stderr, blocked.stderr

    texts = audio.parent / "prompts.toml"
    saved = texts.read_bytes()
    texts.write_text("[cmn\nrating_greeting = ")
    try:
        broken = _run(installed, env, tmp_path, "prompts", "build")
    finally:
        texts.write_bytes(saved)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "prompts.toml" in broken.stderr, broken.stderr
