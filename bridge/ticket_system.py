"""Transfer of tickets to the 12345 ticket system (PINGJIA_TICKET_SYSTEM_URL).

Each new ticket is POSTed to `{url}/tickets` as JSON with `Idempotency-Key: ticket-<no>`; the
system's id comes back and is kept as `transfer_ref`. Status updates come back on
`POST /api/v1/bridge/tickets/{ticket_no}/updates` (pingjia/api/tickets.py). Without the
setting, the built-in console is the ticket system and nothing is transferred. After
`max_attempts` failed tries a ticket is dead-lettered like an outbox item: no more tries, an
error in the log and an alert on the console (`Alerts.transfer_dead`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.backoff import Backoff
from bridge.central import HttpPoster, PostFailed
from rating.policy.profile import Profile
from rating.tickets.models import Ticket
from rating.tickets.repository import TicketRepository, transfer_key

log = structlog.get_logger("pingjia.bridge")
# (ticket id, ticket number, tries, last error, now): raises the console alert.
TransferDead = Callable[[int, str, int, str, datetime], Awaitable[None]]


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
    dead_letter: TransferDead | None = None
    backoff: Backoff = field(default_factory=Backoff)
    max_attempts: int = 8  # like the outbox: then the ticket stops and the console hears it
    batch: int = 100
    lease: timedelta = timedelta(minutes=2)
    timeout: float = 10.0
    http: HttpPoster = field(init=False)

    def __post_init__(self) -> None:
        # A post must fit well inside the lease (see __call__): at most half of it.
        self.timeout = min(self.timeout, self.lease.total_seconds() / 2)
        self.http = HttpPoster(self.base_url, self.timeout)

    async def __call__(self, now: datetime) -> int:
        """One sweep: returns how many tickets were transferred."""
        lease_until = now + self.lease
        async with self.sessions() as session:
            repo = TicketRepository(session)
            ids = await repo.claim_transfers(now, lease_until, self.batch)
            tickets = list(await repo.tickets_by_ids(ids))
            await session.commit()
        done = 0
        last_start = lease_until - timedelta(seconds=self.timeout)
        for index, ticket in enumerate(tickets):
            if self.clock() >= last_start:
                # A post begun now could outlive the lease, and another node may then claim
                # the ticket and post it too: the rest wait for whoever claims them next.
                log.info("ticket transfer batch outlasted its lease", left=len(tickets) - index)
                break
            done += await self._transfer(ticket)
        return done

    async def _transfer(self, ticket: Ticket) -> int:
        callback = f"{self.public_url.rstrip('/')}/api/v1/bridge/tickets/{ticket.ticket_no}/updates"
        values: dict[str, Any]
        try:
            answer = await self.http.post(
                "/tickets",
                transfer_key(str(ticket.ticket_no)),
                ticket_payload(self.profile, ticket, callback),
            )
        except PostFailed as exc:
            attempts = ticket.transfer_attempts + 1
            dead = attempts >= self.max_attempts
            report = log.error if dead else log.warning  # an error once it gives up
            report(
                "ticket transfer dead-lettered" if dead else "ticket transfer failed",
                ticket=ticket.ticket_no,
                tries=attempts,
                error=str(exc),
            )
            values = {
                "transfer_attempts": attempts,
                # Dead: no next try (transferred_at stays empty); the alert says so.
                "transfer_next_at": None if dead else self.clock() + self.backoff.delay(attempts),
            }
            ok = 0
            if dead and self.dead_letter is not None:
                await self._save(ticket.id, values)
                await self.dead_letter(
                    ticket.id, ticket.ticket_no or "", attempts, str(exc), self.clock()
                )
                return 0
        else:
            ref = answer.get("id") or answer.get("ticket_id")
            values = {
                "transfer_attempts": ticket.transfer_attempts + 1,
                "transferred_at": self.clock(),
                "transfer_ref": str(ref) if ref is not None else None,
                "transfer_next_at": None,
            }
            ok = 1
        await self._save(ticket.id, values)
        return ok

    async def _save(self, ticket_id: int, values: dict[str, Any]) -> None:
        async with self.sessions() as session:
            await TicketRepository(session).set_values(ticket_id, values)
            await session.commit()

    async def close(self) -> None:
        await self.http.close()
