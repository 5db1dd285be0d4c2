"""The ticket workflow's rules as data and pure functions: no I/O, the time is passed in.

A ticket (差评工单) moves through one table of transitions, each allowed to certain roles:

    new --dispatch--> dispatched --confirm--> confirmed --start_rectify--> rectifying
        --rectify--> rectified --close--> closed
    dispatched --not_adopt--> not_adopted --close--> closed

Deadlines: the profile's rules in order; the first is in force while the ticket waits for its
verification (new, dispatched), the second while it is being rectified (confirmed,
rectifying). Sanmenxia: verify 24 h, rectify 15 days; Taishan: call back in 10 working days,
no rectification limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rating.errors import Conflict, DomainError
from rating.policy.profile import Profile
from rating.words import TICKET_EVENTS, TICKET_STATUSES

STATUSES = (
    "new",
    "dispatched",
    "confirmed",
    "not_adopted",
    "rectifying",
    "rectified",
    "closed",
)
STATUS_LABELS = TICKET_STATUSES  # the Chinese names people read (rating/words.py)
OPEN_STATUSES = frozenset({"new", "dispatched", "confirmed", "rectifying"})
# Which deadline rule (by position in the profile) is in force in which status.
STAGE_OF_STATUS = {"new": 0, "dispatched": 0, "confirmed": 1, "rectifying": 1}


class Forbidden(DomainError):
    """The caller's role may not take this step."""

    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str
    roles: frozenset[str]
    title: str  # the step's Chinese name (rating/words.py), on buttons and in the history


def _t(action: str, sources: Iterable[str], target: str, roles: Iterable[str]) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), TICKET_EVENTS[action])


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("dispatch", ["new"], "dispatched", ["agent", "admin"]),
        _t("confirm", ["dispatched"], "confirmed", ["agent", "agency", "admin"]),
        # A false or malicious rating is not adopted on evidence, ruled by the bureau.
        _t("not_adopt", ["dispatched"], "not_adopted", ["bureau", "admin"]),
        _t("start_rectify", ["confirmed"], "rectifying", ["agency", "admin"]),
        _t("rectify", ["rectifying"], "rectified", ["agency", "admin"]),
        _t("close", ["rectified", "not_adopted"], "closed", ["agent", "bureau", "admin"]),
    )
}
# Results the central store hears about (the other steps are internal to the hotline).
RESULT_ACTIONS = frozenset({"confirm", "not_adopt", "rectify", "close"})
EXTENSION_REQUESTERS = frozenset({"agency", "admin"})
EXTENSION_DECIDERS = frozenset({"bureau", "admin"})


def actions_from(status: str) -> list[str]:
    """The actions a ticket in this status can take, in table order."""
    return [t.action for t in TRANSITIONS.values() if status in t.sources]


def check_transition(action: str, status: str, role: str) -> Transition:
    """The transition to take, or Forbidden (wrong role) / Conflict (wrong status)."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise Conflict(
            f"unknown ticket action {action!r}", code="unknown_action", params={"action": action}
        )
    if role not in transition.roles:
        raise Forbidden(
            f"role {role} may not {action} a ticket; "
            f"allowed: {', '.join(sorted(transition.roles))}",
            code="role_not_allowed",
            params={"role": role, "action": action, "roles": sorted(transition.roles)},
        )
    if status not in transition.sources:
        possible = ", ".join(actions_from(status)) or "none (the ticket is closed)"
        raise Conflict(
            f"a ticket in status {status} cannot {action}; possible now: {possible}",
            code="illegal_transition",
            params={"status": status, "action": action, "actions": actions_from(status)},
        )
    return transition


def check_appeal(profile: Profile, tags: list[str]) -> None:
    """Whether a rating with these tags may be ruled not adopted (Taishan Art. 22)."""
    appeal = profile.appeal
    if not appeal.allowed:
        raise Conflict(f"profile {profile.name} allows no appeals", code="appeals_off")
    if appeal.kinds >= {"staff", "matter"}:
        return
    kinds = {tag.kind for code in tags if (tag := profile.tag(code)) is not None}
    if not kinds or not kinds <= appeal.kinds:
        allowed = ", ".join(sorted(appeal.kinds))
        raise Conflict(
            f"profile {profile.name} lets only ratings about {allowed} be appealed; this "
            f"rating's tags are about {', '.join(sorted(kinds)) or 'nothing named'}",
            code="not_appealable",
            params={"allowed_kinds": sorted(appeal.kinds), "found_kinds": sorted(kinds)},
        )


@dataclass(frozen=True)
class Offer:
    """One step a ticket's page may show: possible (`refusal` None), or why not, in Chinese,
    with the refusal's stable code (`role_not_allowed`, `not_appealable`, `appeals_off`)."""

    action: str
    refusal: str | None = None
    code: str | None = None


def available_actions(profile: Profile, status: str, role: str, tags: list[str]) -> list[Offer]:
    """Every step from this status, each with the refusal taking it would meet (the role, the
    profile's appeal rule); the same checks `TicketService.act` makes, so they agree."""
    offers = []
    for action in actions_from(status):
        try:
            check_transition(action, status, role)
            if action == "not_adopt":
                check_appeal(profile, tags)
        except DomainError as exc:
            offers.append(Offer(action, exc.message, exc.code))
        else:
            offers.append(Offer(action))
    return offers


def stage_deadline(profile: Profile, status: str) -> str | None:
    """The name of the deadline rule in force in this status, if any."""
    index = STAGE_OF_STATUS.get(status)
    rules = profile.ticket_deadlines
    if index is None or index >= len(rules):
        return None
    return rules[index].name


@dataclass(frozen=True)
class GrantedExtension:
    deadline: str
    due_at: datetime
    decided_at: datetime


def deadlines_in_force(
    original: dict[str, str], granted: Iterable[GrantedExtension]
) -> dict[str, datetime]:
    """Each deadline as it stands: the original, or the latest granted extension's date."""
    current = {name: datetime.fromisoformat(when) for name, when in original.items()}
    for ext in sorted(granted, key=lambda e: e.decided_at):
        if ext.deadline in current:
            current[ext.deadline] = ext.due_at
    return current


def overdue_days(due_at: datetime | None, now: datetime) -> int:
    """Whole days past the deadline in force, a started day counting as one; 0 if not late."""
    if due_at is None or now <= due_at:
        return 0
    return math.ceil((now - due_at) / timedelta(days=1))


ALERT_PHASES = ("before", "at", "after")


def alert_times(created_at: datetime, due_at: datetime) -> dict[str, datetime]:
    """When to alert about one deadline: at 80 % of the time allowed, at it, and a day after."""
    span = max(due_at - created_at, timedelta(0))
    return {
        "before": due_at - span / 5,
        "at": due_at,
        "after": due_at + timedelta(days=1),
    }


def ticket_record(
    profile: Profile,
    *,
    case_no: str,
    ticket_no: str,
    status: str,
    verdict: str | None,
    level: int,
    agency: str | None,
    note: str | None,
    feedback: str | None,
    at: datetime,
) -> dict[str, Any]:
    """The central store's payload for one ticket result, coded as the profile says."""
    return {
        "case_no": case_no,  # 办件编号
        "ticket_no": ticket_no,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "verdict": verdict,
        "adopted": verdict != "not_adopted",
        "satisfaction_code": profile.central_store.level_codes[level],
        "agency": agency,
        "note": note or "",
        "feedback": feedback or "",
        "at": at.astimezone(profile.tz).strftime("%Y%m%dT%H%M%S"),
        "region_code": profile.central_store.region_code,
    }
