"""Reply parsing and message segments: pure functions, no I/O.

Bad inputs tried here: empty and blank replies, punctuation only, 12 and 0 and 6 (not levels),
一般 (a word starting with a Chinese numeral), Thanks (starts with the opt-out letter T),
mixed case opt-out words, emoji and characters outside the BMP, a template that grows past
two segments, a template missing a parameter.
"""

from __future__ import annotations

import pytest

from rating.errors import ProfileError
from rating.policy.levels import Level
from rating.policy.loader import load_profile
from sms.parser import ReplyKind, parse_reply
from sms.segments import check_templates, count_segments, render

OUT = ["TD", "T", "N", "R", "退订", "STOP"]
IN = ["订阅", "START"]


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_reply(text, OUT, IN)


@pytest.mark.parametrize(
    ("text", "level", "reason"),
    [
        ("5", 5, None),
        ("５", 5, None),
        ("五", 5, None),
        ("１", 1, None),
        ("一", 1, None),
        ("5分", 5, None),
        ("３星", 3, None),
        ("5 态度差", 5, "态度差"),
        ("５ 态度太差", 5, "态度太差"),
        ("5态度差", 5, "态度差"),
        ("4，办得太慢了。", 4, "办得太慢了"),
        ("五，服务差", 5, "服务差"),
        ("非常不满意", 5, None),
        ("不满意 没人理", 4, "没人理"),
        ("满意", 2, None),
        ("非常满意！", 1, None),
        ("基本满意", 3, None),
        ("  2  ", 2, None),
    ],
)
def test_ratings(text: str, level: int, reason: str | None) -> None:
    reply = parse(text)
    assert reply.kind is ReplyKind.RATING
    assert reply.level == Level(level)
    assert reply.reason == reason


@pytest.mark.parametrize(
    "text", ["TD", "td", "退订", "T", "r", "N", "STOP", "Stop.", "ｔｄ", "退订谢谢", "stop please"]
)
def test_opt_out_words_win(text: str) -> None:
    assert parse(text).kind is ReplyKind.OPT_OUT


def test_opt_out_checked_before_rating() -> None:
    # The word list comes from the profile: a profile may make 5 an opt-out word.
    assert parse_reply("5", ["5"]).kind is ReplyKind.OPT_OUT


@pytest.mark.parametrize("text", ["订阅", "start", "START"])
def test_opt_in(text: str) -> None:
    assert parse(text).kind is ReplyKind.OPT_IN


@pytest.mark.parametrize(
    "text", ["", "   ", "。。", "12", "0", "6", "10分", "一般", "Thanks", "你好", "😀"]
)
def test_anything_else_is_other(text: str) -> None:
    assert parse(text).kind is ReplyKind.OTHER


def test_other_keeps_text_for_a_reason() -> None:
    assert parse("  等了三个月  ").text == "等了三个月"


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("中" * 70, "UCS-2", 1),
        ("中" * 71, "UCS-2", 2),
        ("中" * 134, "UCS-2", 2),
        ("中" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # outside the BMP: two code units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments(text: str, encoding: str, count: int) -> None:
    segments = count_segments(text)
    assert (segments.encoding, segments.count) == (encoding, count)


@pytest.mark.parametrize("name", ["taishan", "sanmenxia"])
def test_shipped_templates_fit_two_segments(name: str) -> None:
    check_templates(load_profile(name), "https://12345.example.gov.cn")


def test_signature_is_added_and_counted() -> None:
    profile = load_profile("taishan")
    text = render(profile, "help", {})
    assert text.startswith("【台山12345】请回复数字评价")


def test_template_too_long_is_refused_naming_it() -> None:
    profile = load_profile("taishan")
    templates = dict(profile.sms.templates)
    templates["reminder"] = "提醒" * 60 + "{link}"
    sms = profile.sms.model_copy(update={"templates": templates})
    broken = profile.model_copy(update={"sms": sms})
    with pytest.raises(ProfileError, match=r"sms\.templates\.reminder: .* 3 segments"):
        check_templates(broken, "https://12345.example.gov.cn", "taishan.toml")


def test_long_public_url_is_measured() -> None:
    # The link's length is real: a very long public URL pushes the invitation over two segments.
    with pytest.raises(ProfileError, match="invitation"):
        check_templates(load_profile("taishan"), "https://" + "x" * 80 + ".example.gov.cn")


def test_missing_parameter_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs parameter 'link'"):
        render(load_profile("taishan"), "invitation", {"case_no": "C1"})
