"""Message text: rendering a template with its signature, counting segments, checking templates.

A message that fits GSM-7 takes 160 characters alone and 153 per segment once split; anything
else (every Chinese message) goes as UCS-2: 70 alone, 67 per segment. The signature 【…】 counts.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from rating.errors import ProfileError
from rating.policy.profile import Profile

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # each takes two septets (escape + char)
MAX_SEGMENTS = 2

# The longest values a template placeholder realistically takes: 12345 case numbers run to
# about 20 characters, and 非常不满意 is the longest label. The link is measured for real.
REALISTIC_CASE_NO = "C" + "2" * 19
LONGEST_LABEL = "非常不满意"
TOKEN_LENGTH = 12
# A deadline alert's parts at their longest: a ticket number (YYMMDD + serial), a local date,
# and a state of a ticket overdue by three-digit days.
REALISTIC_TICKET_NO = "2612310" + "9" * 5
LONGEST_DUE = "12月31日23:59"
LONGEST_STATE = "已超期999天"


@dataclass(frozen=True)
class Segments:
    """How a text goes over the air."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    count: int


def count_segments(text: str) -> Segments:
    """Count the segments a text takes (an empty text still takes one)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2  # characters outside the BMP take two
        single, multi, encoding = 70, 67, "UCS-2"
    count = 1 if units <= single else math.ceil(units / multi)
    return Segments(encoding, units, count)


def render(profile: Profile, template: str, params: Mapping[str, str]) -> str:
    """The text of a message as text providers send it: 【signature】 plus the filled template."""
    try:
        body = profile.sms.templates[template].format(**params)
    except KeyError as exc:
        raise ValueError(f"template {template!r} needs parameter {exc}") from None
    return f"【{profile.sms.signature}】{body}"


def new_token() -> str:
    """A link token: TOKEN_LENGTH URL-safe characters, 72 random bits."""
    return secrets.token_urlsafe(TOKEN_LENGTH * 3 // 4)


def link_for(public_url: str, token: str) -> str:
    """The rating link carried in a message."""
    return f"{public_url.rstrip('/')}/r/{token}"


def check_templates(profile: Profile, public_url: str, source: str | None = None) -> None:
    """Refuse a profile whose templates can exceed two segments with realistic parameters."""
    params = {
        "case_no": REALISTIC_CASE_NO,
        "link": link_for(public_url, "x" * TOKEN_LENGTH),
        "label": LONGEST_LABEL,
        "ticket_no": REALISTIC_TICKET_NO,
        "deadline": max((r.title for r in profile.ticket_deadlines), key=len, default=""),
        "due": LONGEST_DUE,
        "state": LONGEST_STATE,
    }
    faults = []
    for name in sorted(profile.sms.templates):
        text = render(profile, name, params)
        segments = count_segments(text)
        if segments.count > MAX_SEGMENTS:
            faults.append(
                f"sms.templates.{name}: {segments.units} characters ({segments.encoding}) with "
                f"a {len(REALISTIC_CASE_NO)}-character case number and the link "
                f"{params['link']} take {segments.count} segments; at most {MAX_SEGMENTS} "
                f"({MAX_SEGMENTS * 67} characters in Chinese, signature included)"
            )
    if faults:
        raise ProfileError(f"{source or 'profile ' + profile.name}: {'; '.join(faults)}")
