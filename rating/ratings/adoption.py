"""What an adopted rating brings into its own transaction: its outbox row for the central store
and, when the profile says its level opens one, its ticket (rating/tickets/opening.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rating.cases.models import Evaluation, Rating
from rating.outbox.central import rating_values
from rating.policy.profile import Profile
from rating.policy.workdays import WorkCalendar
from rating.privacy import PhoneVault
from rating.tickets.models import Ticket
from rating.tickets.opening import new_ticket


@dataclass(frozen=True)
class Adoption:
    """What an adopted rating writes beside it: its outbox row (values, for the batch's Core
    inserts) and its ticket, numbered by the writer just before the insert."""

    outbox: dict[str, Any]
    ticket: Ticket | None = None


@dataclass(frozen=True)
class AdoptionRules:
    """The profile's consequences of an adopted rating, over one profile and calendar."""

    profile: Profile
    vault: PhoneVault
    calendar: WorkCalendar

    def after_adoption(self, evaluation: Evaluation, rating: Rating, now: datetime) -> Adoption:
        """The rows an adopted rating brings into its transaction: the outbox row for the
        central store and, when the level opens one, the ticket with its audit line."""
        outbox = rating_values(self.profile, self.vault, evaluation, rating, now)
        if not self.profile.opens_ticket(rating.level):
            return Adoption(outbox)
        return Adoption(outbox, new_ticket(self.profile, self.calendar, evaluation, rating, now))
