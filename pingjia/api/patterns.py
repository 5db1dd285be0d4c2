"""The rules the validation applies, written as JSON Schema patterns for the OpenAPI document.

PHONE_PATTERN accepts exactly what `rating.privacy.normalize_phone` accepts (a property test
holds them together): separators (blanks, `-`, `(`, `)`, `.`) anywhere, full-width digits and
plus, a +86/0086 prefix (or 86 on a 13-digit number) before a mainland mobile or landline, and
other numbers in E.164 (`+…` or `00…`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

_S = r"[\s\-().]*"  # the separators normalize_phone drops, anywhere
_PLUS = "[+＋]"
# `\d` as normalize_phone's own patterns have it (full-width digits included).


def _wide(char: str) -> str:
    """A digit as ASCII or full-width (normalize_phone translates the latter)."""
    return f"[{char}{chr(ord(char) + 0xFEE0)}]"


def _digits(low_first: str, low: int, high: int | None = None) -> str:
    """A first digit from `low_first` to 9, then low..high more digits, separators after each."""
    count = f"{{{low}}}" if high is None else f"{{{low},{high}}}"
    first = f"[{low_first}-9{chr(ord(low_first) + 0xFEE0)}-{chr(ord('9') + 0xFEE0)}]"
    return f"{first}{_S}(?:\\d{_S}){count}"


def _lit(text: str) -> str:
    return "".join(f"{_wide(c)}{_S}" for c in text)


_MOBILE = _lit("1") + _digits("3", 9)
_LANDLINE = _lit("0") + _digits("1", 8, 10)
_NATIONAL = f"(?:{_MOBILE}|{_LANDLINE})"
_INTL_00 = _lit("00") + _digits("1", 6, 14)  # 00… read as +…
_INTL_PLUS = f"{_PLUS}{_S}" + _digits("1", 6, 14)
# After a +86 or 0086 prefix: what is left must be a national number, or (oddly, but so the
# normalizer reads it) another international one.
_AFTER_PREFIX = f"(?:{_NATIONAL}|{_INTL_00}|{_INTL_PLUS})"
# "86" is a prefix only on a 13-digit text: 11 characters after it.
_AFTER_86 = (
    f"(?:{_MOBILE}|{_lit('0')}{_digits('1', 9)}|{_lit('00')}{_digits('1', 8)}"
    f"|{_PLUS}{_S}{_digits('1', 9)})"
)
PHONE_PATTERN = (
    f"^{_S}(?:"
    f"{_PLUS}{_S}{_lit('86')}{_AFTER_PREFIX}"
    f"|{_lit('0086')}{_AFTER_PREFIX}"
    f"|{_lit('86')}{_AFTER_86}"
    f"|{_NATIONAL}"
    f"|{_lit('00')}(?!{_lit('86')}){_digits('1', 6, 14)}"
    f"|{_PLUS}{_S}(?!{_lit('86')}){_digits('1', 6, 14)}"
    ")$"
)
PHONE_DESCRIPTION = (
    "a mainland mobile (11 digits starting with 1), a landline with its area code, or an "
    "international number (+… or 00…); blanks, dashes, dots and brackets are ignored"
)


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _text_time(value: object) -> object:
    """A time is ISO 8601 text: pydantic would also read a number as seconds since 1970."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip())
    ):
        raise PydanticCustomError(  # its type names the Chinese message (rating/words.py)
            "time_not_text",
            "a time must be ISO 8601 text with a UTC offset, like 2026-11-20T17:30:00+08:00",
        )
    return value


# What every time in a request is: the document says `format: date-time`, and so does this.
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_text_time)]


def _integral(value: object) -> object:
    """JSON has one kind of number: 2.0 is the integer 2, as JSON Schema's `integer` says."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
# An integer in a JSON body: 2 or 2.0, never "2", true or 2.5 (the document's `integer`).
# Constraints go before INTEGRAL (`Annotated[int, Field(ge=1), INTEGRAL, Strict()]`): put
# after it, pydantic checks them on the raw value and writes `ge` into the document.
JsonInt = Annotated[int, INTEGRAL, Strict()]
