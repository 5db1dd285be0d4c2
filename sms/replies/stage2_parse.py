"""Stage 2 of the reply pipeline, parsing: a stored reply read as opt-out, opt-in, a level
with its reason, or other text (sms/parser.py, with the profile's words)."""

from __future__ import annotations

from dataclasses import dataclass

from rating.policy.profile import Profile
from sms.parser import Reply, parse_reply
from sms.replies.stage1_intake import Received


@dataclass(frozen=True)
class Parsed:
    """A stored reply, read."""

    received: Received
    reply: Reply
    phone_hash: str


def parse(profile: Profile, received: Received) -> Parsed:
    """Read one stored reply with the profile's opt-out and opt-in words."""
    words = profile.sms
    reply = parse_reply(received.body, words.opt_out_words, words.opt_in_words)
    return Parsed(received, reply, received.phone_hash)
