"""Deadline alerts (before, at and after each deadline in force) and dead-letter alerts.

Every alert lands in the `alerts` table, which the console reads; deadline alerts also go to the
agency's contact by SMS through an injected sender (the SMS part owns sending). Without a
sender, or without a contact, the alert says so instead of pretending it was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import AuditLog
from rating.policy.profile import Profile
from rating.privacy import PhoneVault, mask_phone, normalize_phone
from rating.tickets.models import AgencyContact, Alert, Ticket
from rating.tickets.repository import TicketRepository
from rating.tickets.rules import (
    ALERT_PHASES,
    OPEN_STATUSES,
    alert_times,
    overdue_days,
    stage_deadline,
)

log = structlog.get_logger("pingjia.alerts")
ALERT_TEMPLATE = "ticket_deadline"
NO_SENDER = "sms skipped: no sender"
URGENT_PHASES = ("after",)  # overdue: goes out even in quiet hours
# What precedes the last error in a dead transfer's alert (rating/dead_letters/desk.py reads
# it back).
TRANSFER_STOPPED = "已停止重试："


class SendSms(Protocol):
    """The SMS part's generic send (SmsService.send), as the composition root hands it in:
    at most once per `key`; returns what happened (sent, held, failed, suppressed, duplicate)."""

    async def __call__(
        self,
        phone: str,
        template_id: str,
        params: dict[str, str],
        *,
        key: str,
        urgent: bool,
        now: datetime,
    ) -> str: ...


class Alerts:
    """Record alerts for the console and send the deadline ones by SMS."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        profile: Profile,
        vault: PhoneVault,
        send_sms: SendSms | None = None,
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.vault = vault
        self.send_sms = send_sms

    async def list(
        self, ticket_no: str | None, since: datetime | None, limit: int, agency: str | None = None
    ) -> Sequence[Alert]:
        """Newest first; with `agency`, only that agency's (an agency token's view)."""
        async with self.sessions() as session:
            return await TicketRepository(session).alerts(ticket_no, since, limit, agency)

    async def set_contact(
        self, agency: str, name: str, phone: str, *, actor: str, now: datetime
    ) -> str:
        """Store (or replace) an agency's alert contact; returns the masked number."""
        number = normalize_phone(phone)
        masked = mask_phone(number)
        async with self.sessions() as session:
            repo = TicketRepository(session)
            contact = await repo.contact(agency)
            if contact is None:
                contact = AgencyContact(agency=agency)
                repo.add(contact)
            contact.name, contact.phone_enc = name, self.vault.encrypt(number)
            contact.phone_masked, contact.updated_at = masked, now
            AuditLog(session).record(now, actor, "contact.set", "agency", agency, phone=masked)
            await session.commit()
        return masked

    async def sweep_deadlines(self, now: datetime, limit: int = 500) -> int:
        """Record every deadline alert now due, once; returns how many were recorded."""
        created: list[tuple[int, str | None]] = []
        async with self.sessions() as session:
            repo = TicketRepository(session)
            for ticket in await repo.claim_alert_tickets(now, limit):
                alert = await self._due_alert(repo, ticket, now)
                if alert is not None:
                    repo.add(alert)
                    await repo.flush()
                    created.append((alert.id, ticket.agency))
            await session.commit()
        for alert_id, agency in created:
            await self._sms(alert_id, agency, now)
        return len(created)

    async def _due_alert(
        self, repo: TicketRepository, ticket: Ticket, now: datetime
    ) -> Alert | None:
        """The latest alert phase now due for this ticket, and its next alert time."""
        name = stage_deadline(self.profile, ticket.status)
        due = ticket.due_at
        if ticket.status not in OPEN_STATUSES or name is None or due is None:
            ticket.next_alert_at = None
            return None
        times = alert_times(ticket.created_at, due)
        future = [at for at in times.values() if at > now]
        ticket.next_alert_at = min(future) if future else None
        # Only the latest phase reached is sent: a late sweep does not replay "before".
        reached = [p for p in ALERT_PHASES if times[p] <= now]
        if not reached:
            return None
        phase = reached[-1]
        key = f"deadline:{ticket.id}:{name}:{due.isoformat()}:{phase}"
        if await repo.alert_exists(key):
            return None
        return Alert(
            dedupe_key=key,
            kind="deadline",
            phase=phase,
            ticket_id=ticket.id,
            ticket_no=ticket.ticket_no,
            agency=ticket.agency,
            deadline=name,
            due_at=due,
            message=self._message(ticket.ticket_no or "", name, due, phase, now),
            sms_status="pending",
            created_at=now,
        )

    def _params(
        self, ticket_no: str, name: str, due: datetime, phase: str, now: datetime
    ) -> dict[str, str]:
        """The parts of the `ticket_deadline` template, for the console and the SMS alike."""
        title = next((r.title for r in self.profile.ticket_deadlines if r.name == name), name)
        state = {
            "before": "即将到期",
            "at": "已到期",
            "after": f"已超期{overdue_days(due, now)}天",
        }[phase]
        return {
            "ticket_no": ticket_no,
            "deadline": title,
            "due": due.astimezone(self.profile.tz).strftime("%m月%d日%H:%M"),
            "state": state,
        }

    def _message(self, ticket_no: str, name: str, due: datetime, phase: str, now: datetime) -> str:
        params = self._params(ticket_no, name, due, phase, now)
        return self.profile.sms.templates[ALERT_TEMPLATE].format(**params)

    async def _sms(self, alert_id: int, agency: str | None, now: datetime) -> None:
        async with self.sessions() as session:
            repo = TicketRepository(session)
            alert = await session.get(Alert, alert_id)
            assert alert is not None
            contact = await repo.contact(agency) if agency else None
            if self.send_sms is None:
                status, detail = "skipped", NO_SENDER
            elif contact is None:
                status, detail = "skipped", f"sms skipped: no contact for agency {agency!r}"
            else:
                status, detail = await self._send(contact, alert, now)
            await repo.set_alert_sms(alert_id, status, detail)
            await session.commit()

    async def _send(self, contact: AgencyContact, alert: Alert, now: datetime) -> tuple[str, str]:
        assert self.send_sms is not None and alert.due_at is not None and alert.phase
        params = self._params(
            alert.ticket_no or "", alert.deadline or "", alert.due_at, alert.phase, alert.created_at
        )
        to = f"to {contact.name} {contact.phone_masked}"
        try:
            outcome = await self.send_sms(
                self.vault.decrypt(contact.phone_enc),
                ALERT_TEMPLATE,
                params,
                key=f"alert:{alert.id}",
                urgent=alert.phase in URGENT_PHASES,
                now=now,
            )
        except Exception as exc:  # the alert stays on the console whatever the SMS did
            log.warning("alert sms failed", ticket=alert.ticket_no, error=str(exc))
            return "failed", f"{type(exc).__name__}: {exc}"[:2000]
        if outcome == "held":
            return "held", f"{to}, after the quiet hours (sms_messages key alert:{alert.id})"
        if outcome == "failed":
            return "failed", f"{to}: the provider refused it; retried once (alert:{alert.id})"
        return "sent", f"{to} ({outcome})" if outcome != "sent" else to

    async def dead_letter(
        self, *, item_id: int, topic: str, key: str, attempts: int, error: str, now: datetime
    ) -> None:
        """An outbox item gave up after its last try: put it on the console, loudly."""
        log.error("outbox item dead-lettered", item=item_id, topic=topic, key=key, error=error)
        message = f"上报{topic}失败（{attempts}次）：{key}：{error}"
        # One alert per death, not per item: `pingjia outbox retry` can re-arm the item, and
        # should it die again the console must hear it again.
        await self._dead(f"dead:{item_id}:{now.isoformat()}", message, None, None, now)

    async def transfer_dead(
        self, ticket_id: int, ticket_no: str, attempts: int, error: str, now: datetime
    ) -> None:
        """A ticket the 12345 system never took: on the console, with the ticket named."""
        message = f"差评工单{ticket_no}转12345失败（{attempts}次），{TRANSFER_STOPPED}{error}"
        key = f"transfer-dead:{ticket_id}:{now.isoformat()}"  # per death, as above
        await self._dead(key, message, ticket_id, ticket_no, now)

    async def _dead(
        self, dedupe: str, message: str, ticket_id: int | None, ticket_no: str | None, now: datetime
    ) -> None:
        async with self.sessions() as session:
            repo = TicketRepository(session)
            if await repo.alert_exists(dedupe):
                return
            repo.add(
                Alert(
                    dedupe_key=dedupe,
                    kind="dead_letter",
                    ticket_id=ticket_id,
                    ticket_no=ticket_no,
                    message=message[:2000],
                    sms_status="none",
                    created_at=now,
                )
            )
            await session.commit()
