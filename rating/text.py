"""Text a database can store: PostgreSQL refuses NUL and lone surrogates, SQLite stores them.

Every edge (the API's bodies, queries and paths, the console's and the rating page's forms,
SMS webhooks, AGI variables) checks what it reads with these, so bad text is refused as bad
input on both databases alike instead of failing a transaction on one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rating.errors import InvalidInput

# NUL, and UTF-16 surrogates that JSON's \ud800 escapes or a lax decoder can put in a str.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """What in `text` a database cannot store, said for people; None when all is well."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    what = "空字符（NUL）" if char == "\x00" else f"不成对的代理码位 U+{ord(char):04X}"
    return f"第 {found.start() + 1} 个字符是{what}"


def check_text(text: str, field: str) -> str:
    """`text` itself when it can be stored; InvalidInput (`unstorable_text`) naming `field`."""
    problem = unstorable(text)
    if problem is not None:
        # Read by citizens and operators on pages, and by developers in the API's JSON.
        raise InvalidInput(
            f"{field}: {problem}",
            code="unstorable_text",
            params={"field": field, "problem": problem},
        )
    return text


def check_texts(pairs: Iterable[tuple[str, str]]) -> None:
    """`check_text` over (field, text) pairs: form fields, query parameters, path parts."""
    for field, text in pairs:
        check_text(field, "字段名")
        check_text(text, field)


def check_json(value: object, field: str = "body") -> None:
    """Every string (keys too) anywhere in a parsed JSON document can be stored."""
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), f"{field} 的字段名")
            check_json(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{field}[{index}]")
