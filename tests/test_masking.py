"""Every phone form and 身份证 number typed into free text is masked before it is stored
(issue 16.4): examples, hypothesis properties, and a reason through the API.

Bad inputs tried here: landlines with and without area code (0750-1234567, 07501234567,
(0750)1234567, 010-12345678, a bare 1234567 after 电话), +86 and 0086 landlines and mobiles,
mobiles split by blanks or dashes, ID numbers with a final digit and with X or x, all of them
glued to Chinese text on both sides.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from pingjia.composition import Services
from rating.privacy import mask_text
from tests.test_api import agent, client, register  # noqa: F401 (fixtures)

EXAMPLES = [
    ("座机0750-1234567请回电", "座机075****4567请回电"),
    ("打07501234567没人接", "打075****4567没人接"),
    ("号码(0750)1234567", "号码075****4567"),
    ("北京010-12345678", "北京010****5678"),
    ("电话1234567", "电话***4567"),
    ("电话：12345678。", "电话：****5678。"),
    ("拨+86 750 1234567", "拨075****4567"),
    ("拨0086-10-12345678", "拨010****5678"),
    ("手机139 1234 8765", "手机139****8765"),
    ("手机+86-139-1234-8765", "手机139****8765"),
    ("身份证440781199001011234办的", "身份证440***********1234办的"),
    ("证件44078119900101123X", "证件440***********123X"),
    ("证件44078119900101123x", "证件440***********123x"),
]
UNTOUCHED = [
    "case C2026112000001 id 1234567",  # a case number, and a bare number without context
    "工单2611200001已办结",  # a ticket number
    "2026-11-20 17:30 办理",
    "call IVR-1700000000.1",
    "等了30分钟",
]


def test_examples() -> None:
    for raw, masked in EXAMPLES:
        assert mask_text(raw) == masked, raw
    for raw in UNTOUCHED:
        assert mask_text(raw) == raw, raw


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


separator = st.sampled_from(["", "", "-", " "])
mobiles = st.builds(
    lambda prefix, second, a, sep1, b, sep2, c: f"{prefix}1{second}{a}{sep1}{b}{sep2}{c}",
    st.sampled_from(["", "+86", "+86 ", "0086", "86"]),
    st.sampled_from("3456789"),
    digits(1),
    separator,
    digits(4),
    separator,
    digits(4),
)
area_codes = st.one_of(
    st.builds(lambda d: f"0{d}", st.sampled_from(["10", "20", "21", "22", "23", "24", "25"])),
    st.builds(lambda a, b: f"0{a}{b}", st.sampled_from("3456789"), digits(2)),
)
landlines = st.builds(
    lambda style, area, sep, first, rest: (
        f"+86 {area[1:]}{sep}{first}{rest}"
        if style == "+86"
        else f"({area}){first}{rest}"
        if style == "()"
        else f"{area}{sep}{first}{rest}"
    ),
    st.sampled_from(["plain", "+86", "()"]),
    area_codes,
    separator,
    st.sampled_from("23456789"),
    st.one_of(digits(6), digits(7)),
)
id_numbers = st.builds(
    lambda region, year, month, day, seq, check: f"{region}{year}{month:02d}{day:02d}{seq}{check}",
    digits(6).filter(lambda r: r[0] != "0"),
    st.integers(1900, 2025).map(str),
    st.integers(1, 12),
    st.integers(1, 28),
    digits(3),
    st.sampled_from("0123456789Xx"),
)
# Text around a number: Chinese, punctuation, letters, never a digit glued to it.
around = st.text(alphabet="办事大厅窗口的人态度差，请回电。 abcXYZ：:", max_size=12)


@settings(max_examples=300, deadline=None)
@given(around, st.one_of(mobiles, landlines, id_numbers), around)
def test_no_number_survives_masking(before: str, number: str, after: str) -> None:
    masked = mask_text(before + number + after)
    plain = re.sub(r"\D", "", number)
    assert plain not in re.sub(r"[^\dXx]", "", masked)  # its digits are gone from the text
    assert "****" in masked
    assert masked.startswith(before) and masked.endswith(after)  # the words around stay
    assert mask_text(masked) == masked  # masking twice changes nothing


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=40))
def test_text_without_digits_is_unchanged(text: str) -> None:
    assert mask_text(text) == text


async def test_a_reason_is_stored_masked(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    await register(client, agent)
    reason = "座机0750-1234567没人接，身份证44078119900101123X"
    body: dict[str, Any] = {
        "case_no": "C2026112000001",
        "level": 4,
        "tags": ["staff_passive"],
        "reason": reason,
    }
    response = await client.post("/api/v1/ratings", json=body, headers=agent)
    assert response.status == 201, await response.text()
    stored = (await response.json())["evaluation"]["rating"]["reason"]
    assert stored == "座机075****4567没人接，身份证440***********123X"
    ticket = (await response.json())["ticket"]
    listed = await client.get(f"/api/v1/tickets?case_no={ticket['case_no']}", headers=agent)
    assert "1234567" not in await listed.text() and "19900101" not in await listed.text()
