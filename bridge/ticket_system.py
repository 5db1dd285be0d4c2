"""Transfer of tickets to the 12345 ticket system (PINGJIA_TICKET_SYSTEM_URL).

Each new ticket is POSTed to `{url}/tickets` as JSON with `Idempotency-Key: ticket-<no>`; the
system's id comes back and is kept as `transfer_ref`. Status updates come back on
`POST /api/v1/bridge/tickets/{ticket_no}/updates` (pingjia/api/tickets.py). Without the
setting, the built-in console is the ticket system and nothing is transferred.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.backoff import Backoff
from bridge.central import HttpPoster, PostFailed
from rating.models import Ticket
from rating.profile import Profile
from rating.ticket_storage import TicketRepository

log = structlog.get_logger("pingjia.bridge")


def ticket_payload(profile: Profile, ticket: Ticket, callback_url: str) -> dict[str, Any]:
    """What the 12345 system gets: the ticket, its deadlines, and where to send updates."""
    return {
        "ticket_no": ticket.ticket_no,
        "case_no": ticket.case.case_no,
        "level": ticket.level,
        "label": profile.label(ticket.level),
        "tags": [t.text for code in ticket.tags if (t := profile.tag(code)) is not None],
        "reason": ticket.reason or "",
        "voice_ref": ticket.voice_ref,
        "agency": ticket.agency,
        "phone": ticket.phone_masked,
        "deadlines": dict(ticket.deadlines),
        "created_at": ticket.created_at.astimezone(profile.tz).isoformat(),
        "callback_url": callback_url,
    }


@dataclass
class TicketTransfer:
    """Claims tickets due for transfer and posts them; retries with backoff."""

    sessions: async_sessionmaker[AsyncSession]
    profile: Profile
    base_url: str
    public_url: str
    clock: Callable[[], datetime]
    backoff: Backoff = field(default_factory=Backoff)
    batch: int = 100
    lease: timedelta = timedelta(minutes=2)
    timeout: float = 10.0
    http: HttpPoster = field(init=False)

    def __post_init__(self) -> None:
        self.http = HttpPoster(self.base_url, self.timeout)

    async def __call__(self, now: datetime) -> int:
        """One sweep: returns how many tickets were transferred."""
        async with self.sessions() as session:
            repo = TicketRepository(session)
            ids = await repo.claim_transfers(now, now + self.lease, self.batch)
            tickets = list(await repo.tickets_by_ids(ids))
            await session.commit()
        done = 0
        for ticket in tickets:
            done += await self._transfer(ticket)
        return done

    async def _transfer(self, ticket: Ticket) -> int:
        callback = f"{self.public_url.rstrip('/')}/api/v1/bridge/tickets/{ticket.ticket_no}/updates"
        values: dict[str, Any]
        try:
            answer = await self.http.post(
                "/tickets",
                f"ticket-{ticket.ticket_no}",
                ticket_payload(self.profile, ticket, callback),
            )
        except PostFailed as exc:
            attempts = ticket.transfer_attempts + 1
            log.warning(
                "ticket transfer failed", ticket=ticket.ticket_no, tries=attempts, error=str(exc)
            )
            values = {
                "transfer_attempts": attempts,
                "transfer_next_at": self.clock() + self.backoff.delay(attempts),
            }
            ok = 0
        else:
            ref = answer.get("id") or answer.get("ticket_id")
            values = {
                "transfer_attempts": ticket.transfer_attempts + 1,
                "transferred_at": self.clock(),
                "transfer_ref": str(ref) if ref is not None else None,
                "transfer_next_at": None,
            }
            ok = 1
        async with self.sessions() as session:
            await TicketRepository(session).set_values(ticket.id, values)
            await session.commit()
        return ok

    async def close(self) -> None:
        await self.http.close()
