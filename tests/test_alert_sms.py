"""Deadline alerts by SMS to the agency's contact, through SmsService.send (sms/notices.py).

On the console provider and through the real Twilio SDK against the fake Twilio API, on SQLite
and PostgreSQL. Faults tried: a second sweep over the same ticket (one SMS, not two), a
repeated send under the same key, an alert falling due in quiet hours (held until 08:00, not
sent at 07:59), an overdue alert at night (sent at once), a provider that refuses the message
(retried once by the notices sweep), a template the profile does not have.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest

from pingjia.composition import Services
from rating.ratings.requests import RatingRequest
from rating.tickets.rules import alert_times
from tests.fakes.twilio_api import FakeTwilio
from tests.sms_support import messages, register, sent

AGENCY = "台山市市场监督管理局"
CONTACT = "13900001111"


async def bad_ticket(services: Services) -> tuple[str, dict[str, datetime]]:
    """A 不满意 rating's ticket with the agency's contact set: its number and alert times."""
    await register(services)
    outcome = await services.ratings.rate(
        RatingRequest("C2026112000001", 4, "api", tags=["staff_passive"], reason="态度差"),
        actor="test",
        now=services.clock(),
    )
    assert outcome.ticket is not None and outcome.ticket.due_at is not None
    await services.alerts.set_contact(
        AGENCY, "张科长", CONTACT, actor="admin:test", now=services.clock()
    )
    ticket = outcome.ticket
    return ticket.ticket_no or "", alert_times(ticket.created_at, ticket.due_at)


def local_at(services: Services, at: datetime, hour: int, minute: int = 0) -> datetime:
    """The same local day as `at`, at hour:minute local time."""
    tz = services.profile.tz
    return datetime.combine(at.astimezone(tz).date(), time(hour, minute), tzinfo=tz)


async def test_before_alert_goes_once_to_the_contact(services: Services) -> None:
    ticket_no, times = await bad_ticket(services)
    day = local_at(services, times["before"], 10) + timedelta(days=1)
    assert times["before"] < day < times["at"]
    assert await services.alerts.sweep_deadlines(day) == 1
    assert await services.alerts.sweep_deadlines(day + timedelta(minutes=1)) == 0
    [alert] = await services.alerts.list(ticket_no, None, 10)
    assert (alert.phase, alert.sms_status) == ("before", "sent")
    assert alert.sms_detail == "to 张科长 139****1111"
    [message] = [m for m in sent(services) if m.template == "ticket_deadline"]
    assert message.to == CONTACT and message.ext_code is None
    assert message.text.startswith(f"【台山12345】差评工单{ticket_no}回访核实期限")
    assert message.text.endswith("即将到期，请及时处理。") and alert.message in message.text
    [row] = await messages(services, kind="alert")
    assert (row.dedupe_key, row.status) == (f"alert:{alert.id}", "sent")
    # The same key again (a retried _sms after a crash): nothing leaves.
    again = await services.sms.send(
        CONTACT, "ticket_deadline", dict(row.params), key=row.dedupe_key, now=day
    )
    assert again == "duplicate" and len(sent(services)) == 1


async def test_alert_at_night_waits_for_the_morning_unless_overdue(services: Services) -> None:
    ticket_no, times = await bad_ticket(services)
    night = local_at(services, times["before"], 23) + timedelta(days=1)
    assert times["before"] < night < times["at"]
    assert await services.alerts.sweep_deadlines(night) == 1
    [alert] = await services.alerts.list(ticket_no, None, 10)
    assert alert.sms_status == "held" and "quiet hours" in (alert.sms_detail or "")
    assert sent(services) == []
    morning = local_at(services, night, 8) + timedelta(days=1)
    assert await services.sms.release_notices(morning - timedelta(minutes=1)) == 0
    assert await services.sms.release_notices(morning) == 1
    assert await services.sms.release_notices(morning + timedelta(minutes=5)) == 0
    assert [m.template for m in sent(services)] == ["ticket_deadline"]
    # Overdue ("after", a day past the deadline) at night: the agency hears it at once.
    late_night = times["after"] + timedelta(minutes=30)
    assert services.profile.quiet_hours.is_quiet(late_night.astimezone(services.profile.tz).time())
    assert await services.alerts.sweep_deadlines(late_night) == 1
    latest = (await services.alerts.list(ticket_no, None, 10))[0]
    assert (latest.phase, latest.sms_status) == ("after", "sent")
    assert "已超期" in sent(services)[-1].text and len(sent(services)) == 2


async def test_unknown_template_is_refused(services: Services) -> None:
    with pytest.raises(ValueError, match="no SMS template 'nope'"):
        await services.sms.send(CONTACT, "nope", {}, key="x", now=services.clock())
    assert await messages(services) == []


# --- the same through the Twilio SDK and the fake Twilio API ------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's own aiohttp use
async def test_alert_through_twilio_once_and_retried_after_a_refusal(
    tw: Services, fake_twilio: FakeTwilio
) -> None:
    ticket_no, times = await bad_ticket(tw)
    day = local_at(tw, times["before"], 10) + timedelta(days=1)
    fake_twilio.fail_next(1, status=503)
    assert await tw.alerts.sweep_deadlines(day) == 1
    [alert] = await tw.alerts.list(ticket_no, None, 10)
    assert alert.sms_status == "failed" and "retried once" in (alert.sms_detail or "")
    assert await tw.alerts.sweep_deadlines(day + timedelta(minutes=1)) == 0
    assert await tw.sms.release_notices(day + timedelta(minutes=1)) == 0  # not yet due
    assert await tw.sms.release_notices(day + timedelta(minutes=31)) == 1
    assert await tw.sms.release_notices(day + timedelta(hours=2)) == 0
    forms: list[dict[str, Any]] = [r.form for r in fake_twilio.requests]
    assert len(forms) == 2 and forms[0] == forms[1]  # one message, tried twice
    assert forms[0]["To"].endswith(CONTACT) and f"差评工单{ticket_no}" in forms[0]["Body"]
    [row] = await messages(tw, kind="alert")
    assert (row.status, row.attempts) == ("queued", 2)
