"""Loading a policy profile from TOML, with errors that name the file, the key and the fault."""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rating.errors import ProfileError
from rating.policy.profile import Invalid, Profile

_REASONS = {
    "extra_forbidden": "unknown key",
    "missing": "missing",
    "time_type": "expected a TOML time without quotes, e.g. 21:00:00",
    "date_type": "expected a TOML date without quotes, e.g. 2027-01-01",
}


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else part
    return out


def _describe(exc: ValidationError) -> str:
    faults = []
    for err in exc.errors(include_url=False):
        key = _dotted(tuple(err["loc"]))
        reason = err["msg"]
        cause: Any = err.get("ctx", {}).get("error")
        if isinstance(cause, Invalid):
            key = ".".join(p for p in (key, cause.key) if p).replace(".[", "[")
            reason = cause.reason
        else:
            reason = _REASONS.get(err["type"], reason)
        faults.append(f"{key or '(top level)'}: {reason}")
    return "; ".join(faults)


def _source(name_or_path: str) -> tuple[str, Traversable | Path]:
    if "/" not in name_or_path and not name_or_path.endswith(".toml"):
        builtin = resources.files("rating.policy") / "profiles" / f"{name_or_path}.toml"
        if builtin.is_file():
            return str(builtin), builtin
    return name_or_path, Path(name_or_path)


def builtin_profiles() -> list[str]:
    """The names of the profiles shipped in rating/policy/profiles."""
    files = (resources.files("rating.policy") / "profiles").iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


def load_profile(name_or_path: str) -> Profile:
    """Load a built-in profile by name, or a TOML file by path; raise ProfileError if invalid."""
    where, source = _source(name_or_path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        known = ", ".join(builtin_profiles())
        reason = exc.strerror or exc
        raise ProfileError(f"{where}: cannot read profile ({reason}); built-ins: {known}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{where}: not UTF-8 text ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: broken TOML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{where}: {_describe(exc)}") from None
