"""Reading a citizen's SMS reply: opt-out and opt-in words first, then a level and a reason.

Forgiving on purpose: full-width digits (５), Chinese numerals (五), level words (非常不满意),
a score suffix (5分), any case, stray punctuation; the text after the level is the reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from rating.policy.levels import LABELS, Level

# Longest first, so 非常不满意 is not read as 不满意 and 不满意 not as 满意.
LEVEL_WORDS = sorted(
    ((label, int(level)) for level, label in LABELS.items()), key=lambda w: -len(w[0])
)
CHINESE_NUMERALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
# A Chinese numeral is a level only when nothing word-like follows it: 一般 is not 1.
_NUMERAL_END = re.compile(r"(?:[分星级]|$|[\s\W])")
_DIGIT = re.compile(r"([1-5])(?!\d)[分星级]?")
_SEPARATORS = " \t\r\n,.;:!?、，。；：！？…~-—_/|()（）[]【】\"'“”‘’"


class ReplyKind(Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    RATING = "rating"
    OTHER = "other"


@dataclass(frozen=True)
class Reply:
    """What a reply asks for; `text` is the cleaned reply, the reason when kind is OTHER."""

    kind: ReplyKind
    level: Level | None = None
    reason: str | None = None
    text: str = ""


def clean(text: str) -> str:
    """NFKC (full-width to half-width), trimmed of separators at both ends."""
    return unicodedata.normalize("NFKC", text).strip(_SEPARATORS)


def _is_word(text: str, words: Iterable[str]) -> bool:
    folded = text.casefold()
    first = folded.split()[0] if folded.split() else ""
    for word in words:
        w = unicodedata.normalize("NFKC", word).casefold()
        # Latin words (TD, T, STOP) must stand alone: "Thanks" is not T. Chinese words may lead
        # a sentence: 退订谢谢.
        if folded == w or first == w or (not w.isascii() and folded.startswith(w)):
            return True
    return False


def _level(text: str) -> tuple[int, str] | None:
    """The level at the start of the text and what follows it, or None."""
    digit = _DIGIT.match(text)
    if digit:
        return int(digit.group(1)), text[digit.end() :]
    first = text[:1]
    if first in CHINESE_NUMERALS and _NUMERAL_END.match(text, 1):
        rest = text[1:]
        return CHINESE_NUMERALS[first], rest[1:] if rest[:1] in "分星级" else rest
    for word, level in LEVEL_WORDS:
        if text.startswith(word):
            return level, text[len(word) :]
    return None


def parse_reply(raw: str, opt_out_words: Iterable[str], opt_in_words: Iterable[str] = ()) -> Reply:
    """Classify a reply; opt-out words win over everything else."""
    text = clean(raw)
    if not text:
        return Reply(ReplyKind.OTHER, text="")
    if _is_word(text, opt_out_words):
        return Reply(ReplyKind.OPT_OUT, text=text)
    if _is_word(text, opt_in_words):
        return Reply(ReplyKind.OPT_IN, text=text)
    found = _level(text)
    if found is None:
        return Reply(ReplyKind.OTHER, text=text)
    level, rest = found
    reason = rest.strip(_SEPARATORS) or None
    return Reply(ReplyKind.RATING, Level(level), reason, text)
