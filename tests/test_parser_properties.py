"""Hypothesis properties of the parsers that read what strangers send: the SMS reply parser
and the AGI wire format (reply lines, command words, the environment block).

Bad inputs tried here (generated): any Unicode text as an SMS reply; any text as an AGI reply
line; any bytes as an environment block; any argument as a command word.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi.protocol import (
    ProtocolError,
    command_line,
    parse_environment,
    parse_reply,
    split_command,
)
from sms.parser import ReplyKind
from sms.parser import parse_reply as parse_sms

OPT_OUT = ["TD", "退订"]
FAST = settings(max_examples=300, deadline=None)


@FAST
@given(st.text(max_size=200))
def test_sms_reply_parser_classifies_anything(raw: str) -> None:
    reply = parse_sms(raw, OPT_OUT, ["订阅"])
    assert reply.kind in set(ReplyKind)
    if reply.kind is ReplyKind.RATING:
        assert reply.level is not None and 1 <= int(reply.level) <= 5
    else:
        assert reply.level is None
    assert "\x00" not in reply.text or "\x00" in raw


@FAST
@given(st.sampled_from(["1", "2", "3", "4", "5"]), st.text(alphabet=" ，。!", max_size=5))
def test_sms_a_bare_digit_is_its_level(digit: str, blanks: str) -> None:
    reply = parse_sms(blanks + digit + blanks, OPT_OUT)
    assert reply.kind is ReplyKind.RATING and int(reply.level or 0) == int(digit)


@FAST
@given(st.text(max_size=300))
def test_agi_reply_line_parses_or_says_why(line: str) -> None:
    try:
        reply = parse_reply(line)
    except ProtocolError:
        return  # a clear refusal, not a crash
    assert 100 <= reply.code <= 999


@FAST
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\r\n\x00")), max_size=6))
def test_agi_command_words_round_trip(words: list[str]) -> None:
    # What we quote, Asterisk's word splitting reads back word for word.
    assert split_command(command_line(*words)) == words


@FAST
@given(st.binary(max_size=2000))
def test_agi_environment_parses_or_says_why(block: bytes) -> None:
    try:
        env = parse_environment(block)
    except ProtocolError:
        return
    assert "agi_request" in env
    assert all(key.startswith("agi_") for key in env)
