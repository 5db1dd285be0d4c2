"""A bad rating's ticket (差评工单), born in the transaction of the rating that opened it.

The profile says which levels open one (`Profile.opens_ticket`); its deadlines are computed from
the profile and the working-day calendar (rating/policy/deadlines.py).
"""

from __future__ import annotations

from datetime import datetime

from rating.cases.models import Evaluation, Rating
from rating.db.records import new_record
from rating.policy.deadlines import compute_deadlines
from rating.policy.profile import Profile
from rating.policy.workdays import WorkCalendar
from rating.tickets.models import Ticket


def new_ticket(
    profile: Profile,
    calendar: WorkCalendar,
    evaluation: Evaluation,
    rating: Rating,
    now: datetime,
) -> Ticket:
    """The ticket of an adopted bad rating, not numbered yet (rating/tickets/numbering.py)."""
    case = evaluation.case
    rating_id = rating.id
    level = rating.level
    deadlines = compute_deadlines(profile, now, calendar)
    return new_record(
        Ticket,
        {
            "case_id": case.id,
            "evaluation_id": evaluation.id,
            "rating_id": rating_id,
            "status": "new",
            "level": level,
            "tags": list(rating.tags),
            "reason": rating.reason,
            "voice_ref": rating.voice_ref,
            "agency": case.agency,
            "phone_masked": case.phone_masked,
            "deadlines": {name: when.isoformat() for name, when in deadlines.items()},
            "created_at": now,
            # The first rule is the one in force while the ticket is new
            # (rating/tickets/rules.py); the alert and transfer sweeps pick it up from `now`.
            "due_at": next(iter(deadlines.values()), None),
            "next_alert_at": now,
            "transfer_next_at": now,
            "updated_at": now,
            "ticket_no": None,  # numbered last in the transaction that inserts it
        },
    )
