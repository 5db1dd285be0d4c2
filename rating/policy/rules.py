"""Pure rules over a profile: due times, rating validation, ticket numbers. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rating.errors import InvalidInput
from rating.policy.levels import CHANNELS, Level
from rating.policy.profile import Profile
from rating.privacy import mask_text

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class DueTimes:
    """When an unrated evaluation gets its default rating, and when its reminder goes out."""

    default_due_at: datetime
    reminder_due_at: datetime | None


def due_times(profile: Profile, completed_at: datetime) -> DueTimes:
    """Due times counted from the moment the case was completed (natural days and hours)."""
    if completed_at.tzinfo is None:
        raise ValueError("completed_at must carry a UTC offset")
    default_due = completed_at + timedelta(days=profile.default_rating.after_days)
    reminder_due = None
    if profile.reminder.enabled:
        reminder_due = completed_at + timedelta(hours=profile.reminder.delay_hours)
    return DueTimes(default_due, reminder_due)


@dataclass(frozen=True)
class CheckedRating:
    level: Level
    tags: list[str]
    reason: str | None


def check_rating(
    profile: Profile,
    level: int,
    channel: str,
    tags: list[str] | None,
    reason: str | None,
    *,
    require_reason: bool,
) -> CheckedRating:
    """Validate a rating against the profile; `require_reason` is off where a caller hung up."""
    try:
        checked_level = Level(level)
    except ValueError:
        raise InvalidInput(
            f"level must be 1 (非常满意) to 5 (非常不满意), got {level!r}",
            code="invalid_level",
            params={"value": repr(level)},
        ) from None
    if channel not in CHANNELS:
        raise InvalidInput(
            f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}",
            code="invalid_channel",
            params={"allowed": CHANNELS, "value": repr(channel)},
        )
    clean_tags: list[str] = []
    allowed = {tag.code for tag in profile.tags_for(checked_level)}
    for code in tags or []:
        if code not in allowed:
            raise InvalidInput(
                f"tag {code!r} is not a tag of level {checked_level.label} in profile "
                f"{profile.name}; allowed: {', '.join(sorted(allowed)) or 'none'}",
                code="invalid_tag",
                params={"tag": code, "level": checked_level.label, "allowed": sorted(allowed)},
            )
        if code not in clean_tags:
            clean_tags.append(code)
    # A number written into a free-text reason would sit in clear at rest: mask it.
    text = mask_text((reason or "").strip()) or None
    if text is not None and len(text) > MAX_REASON_CHARS:
        raise InvalidInput(
            f"reason is {len(text)} characters; at most {MAX_REASON_CHARS}",
            code="reason_too_long",
            params={"length": len(text), "max": MAX_REASON_CHARS},
        )
    if require_reason and profile.reason_required(checked_level) and not clean_tags and not text:
        raise InvalidInput(
            f"profile {profile.name} requires a tag or a reason for {checked_level.label}",
            code="reason_required",
            params={"level": checked_level.label},
        )
    return CheckedRating(checked_level, clean_tags, text)


def ticket_number(created_at: datetime, ticket_id: int) -> str:
    """A number an agent can read aloud: local date (YYMMDD) and the ticket's serial."""
    return f"{created_at:%y%m%d}{ticket_id:04d}"
