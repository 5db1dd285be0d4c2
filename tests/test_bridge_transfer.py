"""Transfer of tickets to a fake 12345 system, and deadline alerts by SMS through a callable.

Faults tried here: the 12345 system failing (500) then recovering, a sweep run twice (the
ticket goes once), the 12345 system failing for good (dead letter and a console alert after
the last try), an SMS sender that raises, an agency without a contact,
a bad contact phone number, a sweep that runs late (only the latest phase is sent).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from bridge.backoff import Backoff
from bridge.ticket_system import TicketTransfer
from pingjia.composition import Services
from rating.cases.registration import ServiceRecord
from rating.errors import InvalidInput
from rating.ratings.requests import RatingRequest
from rating.tickets.alerts import Alerts
from rating.tickets.service import Step
from tests.fakes.clock import FakeClock
from tests.fakes.ticket_system import FakeTicketSystem

AGENCY = "台山市市场监督管理局"


@pytest.fixture
async def system() -> AsyncIterator[FakeTicketSystem]:
    fake = FakeTicketSystem()
    await fake.start()
    yield fake
    await fake.stop()


async def bad_rating(services: Services, case_no: str = "C1") -> str:
    now = services.clock()
    await services.ratings.register(
        ServiceRecord(case_no, "complaint", "13812345678", now - timedelta(hours=1), AGENCY),
        actor="t",
        now=now,
    )
    outcome = await services.ratings.rate(
        RatingRequest(case_no, 5, "ivr", tags=["staff_hostile"], voice_ref="/rec/1.wav"),
        actor="t",
        now=now,
    )
    assert outcome.ticket is not None and outcome.ticket.ticket_no
    return outcome.ticket.ticket_no


@pytest.mark.article("sanmenxia", 14)
@pytest.mark.article("taishan", 21)
async def test_ticket_goes_to_12345_once_after_a_failure(
    services: Services, system: FakeTicketSystem, clock: FakeClock
) -> None:
    no = await bad_rating(services)
    transfer = TicketTransfer(
        services.sessions,
        services.profile,
        system.url,
        "https://pingjia.example",
        clock,
        backoff=Backoff(base=10, rng=random.Random(3)),
    )
    system.script("/tickets", 500, times=1)
    try:
        assert await transfer(clock()) == 0
        assert await transfer(clock()) == 0  # backing off
        clock.advance(minutes=1)
        assert await transfer(clock()) == 1
        assert await transfer(clock()) == 0  # done: never again
    finally:
        await transfer.close()
    calls = system.to("/tickets")
    assert len(calls) == 2
    assert {c.headers["Idempotency-Key"] for c in calls} == {f"ticket-{no}"}
    body = calls[-1].json
    assert body["ticket_no"] == no and body["label"] == "非常不满意"
    assert body["phone"] == "138****5678" and body["voice_ref"] == "/rec/1.wav"
    assert body["tags"] == ["态度恶劣，故意刁难"]
    assert body["callback_url"] == f"https://pingjia.example/api/v1/bridge/tickets/{no}/updates"
    view = await services.tickets.get(no)
    assert view.ticket.transfer_ref == "GD-000001" and view.ticket.transferred_at is not None


async def test_alerts_by_sms_through_the_injected_sender(
    services: Services, clock: FakeClock
) -> None:
    sent: list[tuple[str, str, dict[str, str]]] = []
    keys: list[tuple[str, bool]] = []

    async def send_sms(
        phone: str, template: str, params: dict[str, str], *, key: str, urgent: bool, now: datetime
    ) -> str:
        sent.append((phone, template, params))
        keys.append((key, urgent))
        return "sent"

    alerts = Alerts(services.sessions, services.profile, services.vault, send_sms)
    with pytest.raises(InvalidInput):
        await alerts.set_contact(AGENCY, "王科长", "12", actor="t", now=clock())
    masked = await alerts.set_contact(AGENCY, "王科长", "13900001111", actor="t", now=clock())
    assert masked == "139****1111"
    no = await bad_rating(services)
    await services.tickets.act(no, "dispatch", Step(), role="agent", actor="a", now=clock())
    due = (await services.tickets.get(no)).ticket.due_at
    assert due is not None
    assert await alerts.sweep_deadlines(clock()) == 0  # nothing due yet
    assert await alerts.sweep_deadlines(due - timedelta(days=1)) == 1  # 80 % of the time gone
    assert await alerts.sweep_deadlines(due - timedelta(days=1)) == 0  # once only
    assert await alerts.sweep_deadlines(due + timedelta(seconds=1)) == 1
    assert await alerts.sweep_deadlines(due + timedelta(days=3)) == 1
    assert await alerts.sweep_deadlines(due + timedelta(days=9)) == 0  # nothing after "after"
    assert [p["state"] for _, _, p in sent] == ["即将到期", "已到期", "已超期3天"]
    assert {(phone, template) for phone, template, _ in sent} == {
        ("13900001111", "ticket_deadline")
    }
    assert [urgent for _, urgent in keys] == [False, False, True]  # overdue: not held at night
    assert len({key for key, _ in keys}) == 3 and all(k.startswith("alert:") for k, _ in keys)
    listed = await alerts.list(no, None, 10)
    assert [a.sms_status for a in listed] == ["sent", "sent", "sent"]
    assert listed[0].sms_detail == "to 王科长 139****1111"


async def test_late_sweep_sends_only_the_latest_phase_and_failures_are_recorded(
    services: Services, clock: FakeClock
) -> None:
    async def broken(
        phone: str, template: str, params: dict[str, str], *, key: str, urgent: bool, now: datetime
    ) -> str:
        raise ConnectionError("gateway down")

    alerts = Alerts(services.sessions, services.profile, services.vault, broken)
    await alerts.set_contact(AGENCY, "王科长", "13900001111", actor="t", now=clock())
    no = await bad_rating(services)
    due = (await services.tickets.get(no)).ticket.due_at
    assert due is not None
    assert await alerts.sweep_deadlines(due + timedelta(days=2)) == 1
    [alert] = await alerts.list(no, None, 10)
    assert (alert.phase, alert.sms_status) == ("after", "failed")
    assert "gateway down" in (alert.sms_detail or "")
    other = await bad_rating(services, "C2")
    await services.tickets.act(
        other, "dispatch", Step(agency="无联系人局"), role="agent", actor="a", now=clock()
    )
    await alerts.sweep_deadlines(due + timedelta(days=2))
    [alert] = await alerts.list(other, None, 10)
    assert alert.sms_detail == "sms skipped: no contact for agency '无联系人局'"


async def test_closed_ticket_gets_no_more_alerts(services: Services, clock: FakeClock) -> None:
    no = await bad_rating(services)
    for action, role, step in [
        ("dispatch", "agent", Step()),
        ("not_adopt", "bureau", Step(evidence="录音")),
        ("close", "bureau", Step()),
    ]:
        await services.tickets.act(no, action, step, role=role, actor=role, now=clock())
    assert await services.alerts.sweep_deadlines(clock() + timedelta(days=60)) == 0
    assert (await services.tickets.get(no)).ticket.next_alert_at is None


async def test_transfer_dead_letters_after_the_last_try(
    services: Services, system: FakeTicketSystem, clock: FakeClock
) -> None:
    no = await bad_rating(services)
    transfer = TicketTransfer(
        services.sessions,
        services.profile,
        system.url,
        "https://pingjia.example",
        clock,
        dead_letter=services.alerts.transfer_dead,
        backoff=Backoff(base=10, rng=random.Random(3)),
        max_attempts=3,
    )
    system.script("/tickets", 503, {"error": "maintenance"}, times=None)
    try:
        for _ in range(6):
            assert await transfer(clock()) == 0
            clock.advance(hours=1)
    finally:
        await transfer.close()
    assert len(system.to("/tickets")) == 3  # then no more tries
    ticket = (await services.tickets.get(no)).ticket
    assert (ticket.transfer_attempts, ticket.transfer_next_at) == (3, None)
    assert ticket.transferred_at is None
    [alert] = await services.alerts.list(no, None, 10)
    assert alert.kind == "dead_letter" and f"差评工单{no}转12345失败（3次）" in alert.message
    assert "503" in alert.message
