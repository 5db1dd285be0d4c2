"""The OpenAPI phone pattern accepts exactly what the domain's normalizer accepts.

Bad inputs tried here (generated): any mix of ASCII and full-width digits, `+`, separators,
the 86/0086/+86 prefixes and other Unicode digits, from 1 to 24 characters.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pingjia.api.patterns import PHONE_PATTERN
from rating.errors import InvalidInput
from rating.privacy import normalize_phone

PIECES = st.sampled_from(
    [
        *"0123456789",
        *"0123456789",
        "+",
        "＋",
        " ",
        "-",
        "(",
        ")",
        ".",
        "\t",
        "８",
        "０",
        "１",
        "٣",
        "86",
        "0086",
        "+86",
        "00",
        "13",
        "0750",
    ]
)


def accepted(text: str) -> bool:
    try:
        normalize_phone(text)
    except InvalidInput:
        return False
    return True


@settings(max_examples=1000, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=14).map("".join))
def test_pattern_and_normalizer_agree(text: str) -> None:
    assert bool(re.fullmatch(PHONE_PATTERN, text)) == accepted(text), text


def test_examples() -> None:
    for good in [
        "13812345678",
        "+86 138-1234-5678",
        "0750-1234567",
        "(0750)1234567",
        "+442071234567",
        "0044 20 7123 4567",
        "８613812345678",
    ]:
        assert re.fullmatch(PHONE_PATTERN, good), good
    for bad in ["12345", "+86123", "86 0750", "phone", "1381234567８9"]:
        assert not re.fullmatch(PHONE_PATTERN, bad), bad
