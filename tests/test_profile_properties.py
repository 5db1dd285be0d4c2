"""Hypothesis properties of the profile loader: whatever a city writes into its profile file,
pingjia either loads a valid profile or stops with a ProfileError that names the place; it
never fails with anything else.

Bad inputs tried here (generated): random bytes; the shipped taishan profile with a line
dropped, with a line repeated, with a value replaced by a random one.
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rating.errors import ProfileError
from rating.policy.loader import load_profile
from rating.policy.profile import Profile

SHIPPED = (resources.files("rating.policy") / "profiles" / "taishan.toml").read_text("utf-8")
LINES = SHIPPED.splitlines()
FAST = settings(max_examples=60, deadline=None)


def load(content: bytes) -> Profile | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "city.toml"
        path.write_bytes(content)
        try:
            return load_profile(str(path))
        except ProfileError as exc:
            assert "city.toml" in str(exc)  # says which file
            return None


@FAST
@given(st.binary(max_size=500))
def test_random_bytes_load_or_say_why(content: bytes) -> None:
    load(content)


@FAST
@given(st.integers(0, len(LINES) - 1), st.sampled_from(["drop", "repeat", "value"]), st.text())
def test_a_mutated_profile_loads_or_says_why(line: int, how: str, value: str) -> None:
    lines = list(LINES)
    if how == "drop":
        del lines[line]
    elif how == "repeat":
        lines.insert(line, lines[line])
    elif "=" in lines[line]:
        key = lines[line].split("=", 1)[0]
        lines[line] = f"{key}= {value!r}".replace("'", '"')
    profile = load("\n".join(lines).encode("utf-8", "surrogatepass"))
    if profile is not None:  # loaded: then it is whole (the five labels, a keypad of tags)
        assert [profile.label(n) for n in range(1, 6)] == [shipped.label(n) for n in range(1, 6)]


def test_the_shipped_profile_loads() -> None:
    assert load(SHIPPED.encode()) is not None


shipped = load_profile("taishan")
