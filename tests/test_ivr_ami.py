"""Outbound calls through AMI against a fake Asterisk manager speaking the real framing.

Bad inputs tried here: an unknown case, a case without a phone, an agent extension with a
letter, an empty body, an unknown field, a missing case_no query, a survey for a rated case, a
survey while the profile does not rate by phone, no PINGJIA_AMI_URL, a malformed AMI URL, a
wrong AMI secret (503, nothing written), the wrong roles (agency, bureau), no token; and on the
Asterisk side: an Originate refused (`Response: Error`), an OriginateResponse `Failure` (busy,
`Uniqueid: <unknown>`), the connection dropped between the ack and the OriginateResponse, and
the connection dropped while idle. Stalls, late reports and AMI down: test_ivr_ami_faults.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from ivr.ami import AmiClient, AmiLoginError, AmiUrl
from ivr.models import OutboundCall
from ivr.outbound import AmiDown, CallDesk
from pingjia.app import build_app
from pingjia.composition import Services
from pingjia.settings import Settings
from rating.access.models import AuditEntry
from rating.cases.registration import ServiceRecord
from rating.ratings.requests import RatingRequest
from tests.fakes.ami import FakeAmi, OriginatePlan

PHONE = "13812345678"
CASE = "C2026112000001"


def desk_for(services: Services, url: str | None, *, survey: bool = True) -> CallDesk:
    ivr = services.profile.ivr.model_copy(update={"outbound_survey": survey})
    profile = services.profile.model_copy(update={"ivr": ivr})
    ami = AmiClient(AmiUrl.parse(url), backoff_start_s=0.02, backoff_max_s=0.1) if url else None
    return CallDesk(
        services.sessions,
        profile,
        services.vault,
        services.clock,
        ami,
        connect_wait_s=2.0,
        outcome_timeout_s=2.0,
    )


@pytest.fixture
async def desk(services: Services, fake_ami: FakeAmi) -> CallDesk:
    services.calls = desk_for(services, fake_ami.url)
    assert services.calls.ami is not None
    await services.calls.ami.start()
    return services.calls


@pytest.fixture
async def client(aiohttp_client: Any, services: Services, desk: CallDesk) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


async def token(services: Services, role: str) -> dict[str, str]:
    made = await services.tokens.create(role, f"{role}-1", services.clock())
    return {"Authorization": f"Bearer {made}"}


async def register(services: Services, case_no: str = CASE, phone: str | None = PHONE) -> None:
    record = ServiceRecord(case_no, "complaint", phone, services.clock())
    await services.ratings.register(record, actor="test", now=services.clock())


async def audit_actions(services: Services) -> list[str]:
    async with services.sessions() as session:
        rows = (await session.execute(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    return [r[0] for r in rows]


async def test_survey_is_originated_answered_and_recorded(
    client: TestClient, services: Services, fake_ami: FakeAmi, desk: CallDesk
) -> None:
    await register(services)
    agent = await token(services, "agent")
    response = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert response.status == 201, await response.text()
    text = await response.text()
    body = await response.json()
    # The number never leaves the server, masked or not; the random action id is the one value
    # that may hold those digits by chance (a hex id with "5678" in it made this flaky).
    shown = text.replace(body["action_id"], "")
    assert PHONE not in shown and "5678" not in shown
    assert body["status"] == "originated" and body["kind"] == "survey"
    [sent] = fake_ami.originates()
    assert sent["Channel"] == f"PJSIP/{PHONE}@trunk"
    assert sent["Context"] == "pingjia-outbound-survey" and sent["Exten"] == "s"
    assert sent["Variable"] == [f"CASE_NO={CASE}", f"PINGJIA_CALL={body['action_id']}"]
    assert sent["Async"] == "true"
    assert sent["ActionID"] == body["action_id"]
    await desk.settle()
    listed = await client.get("/api/v1/calls", params={"case_no": CASE}, headers=agent)
    [item] = (await listed.json())["items"]
    assert item["status"] == "answered" and item["reason"] is None
    actions = await audit_actions(services)
    assert actions[-3:] == ["call.survey.requested", "call.originated", "call.answered"]


async def test_callback_rings_the_agent_then_the_citizen(
    client: TestClient, services: Services, fake_ami: FakeAmi
) -> None:
    await register(services)
    request = RatingRequest(CASE, 5, "api", tags=["staff_hostile"], reason="态度差")
    outcome = await services.ratings.rate(request, actor="test", now=services.clock())
    assert outcome.ticket is not None
    admin = await token(services, "admin")
    response = await client.post(
        "/api/v1/calls/callback", json={"case_no": CASE, "agent_extension": "1001"}, headers=admin
    )
    assert response.status == 201, await response.text()
    assert PHONE not in await response.text()
    [sent] = fake_ami.originates()
    assert sent["Channel"] == "PJSIP/agent1001" and sent["Context"] == "pingjia-callback"
    assert sent["Exten"] == PHONE  # the dialplan dials it through the trunk and records
    body = await response.json()
    assert sent["Variable"] == [
        f"CASE_NO={CASE}",
        f"PINGJIA_DIAL=PJSIP/{PHONE}@trunk",  # the citizen leg, from PINGJIA_OUTBOUND_DIAL
        f"TICKET_NO={outcome.ticket.ticket_no}",
        f"PINGJIA_CALL={body['action_id']}",
    ]
    assert body["agent_extension"] == "1001" and body["citizen_reached"] is None


async def test_originate_failures_are_recorded_on_the_case(
    client: TestClient, services: Services, fake_ami: FakeAmi, desk: CallDesk
) -> None:
    await register(services)
    agent = await token(services, "agent")
    fake_ami.script_originate(
        OriginatePlan(error="Extension does not exist."), OriginatePlan(answered=False, reason="5")
    )
    refused = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert refused.status == 201
    body = await refused.json()
    assert body["status"] == "failed"
    assert body["reason"] == "Asterisk refused: Extension does not exist."
    busy = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert (await busy.json())["status"] == "originated"
    await desk.settle()
    items = (await (await client.get(f"/api/v1/calls?case_no={CASE}", headers=agent)).json())[
        "items"
    ]
    assert [(i["status"], i["reason"], i["citizen_reached"]) for i in items] == [
        ("failed", "busy", False),
        ("failed", "Asterisk refused: Extension does not exist.", False),
    ]
    assert (await audit_actions(services)).count("call.failed") == 2
    async with services.sessions() as session:  # Asterisk's `Uniqueid: <unknown>` is no id
        uniqueids = (await session.execute(select(OutboundCall.channel_uniqueid))).scalars()
        assert list(uniqueids) == [None, None]


async def reconnected(ami: AmiClient, fake: FakeAmi, logins: int) -> None:
    for _ in range(300):
        if ami.connected and fake.logins >= logins:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reconnected: {fake.logins} logins, last error {ami.last_error}")


async def test_reconnects_after_the_connection_drops(
    services: Services, fake_ami: FakeAmi, desk: CallDesk
) -> None:
    await register(services)
    assert desk.ami is not None and await desk.ami.wait_connected(2)
    fake_ami.script_originate(OriginatePlan(drop_before_response=True))
    lost = await desk.request_survey(CASE, "agent:a")
    await desk.settle()
    [after] = await desk.calls_of(CASE)
    assert lost.status == "originated"
    # Asterisk queued it, then nobody heard how it ended: not "failed", not retried at once.
    assert after.status == "unknown"
    assert after.reason == "Asterisk did not report the call's outcome within 2 s"
    await reconnected(desk.ami, fake_ami, 2)
    fake_ami.drop()  # the idle connection dropped too (Asterisk restarting)
    await reconnected(desk.ami, fake_ami, 3)
    await register(services, "C2026112000002")
    again = await desk.request_survey("C2026112000002", "agent:a")
    await desk.settle()
    assert again.status == "originated"
    assert (await desk.calls_of("C2026112000002"))[0].status == "answered"


async def test_wrong_secret_is_a_clear_error_and_calls_fail_with_it(
    services: Services, fake_ami: FakeAmi
) -> None:
    url = AmiUrl.parse(fake_ami.url_with("not-the-secret"))
    with pytest.raises(AmiLoginError, match=r"refused the AMI login of user 'pingjia'.*secret"):
        await AmiClient(url).connect_once()
    await register(services)
    desk = desk_for(services, fake_ami.url_with("not-the-secret"))
    desk.connect_wait_s = 0.2
    assert desk.ami is not None
    await desk.ami.start()
    try:
        with pytest.raises(AmiDown, match="无法连接 Asterisk") as refused:
            await desk.request_survey(CASE, "agent:a")
        # People read the Chinese message; the log and `detail` keep Asterisk's own words.
        assert "Authentication failed" in refused.value.detail
        assert refused.value.status == 503
        assert await desk.calls_of(CASE) == []  # nothing was tried: nothing recorded
    finally:
        await desk.close()
    assert fake_ami.originates() == []
    assert "not-the-secret" not in str(url)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("survey", {"case_no": "C404"}, 404, "case_not_found"),
        ("callback", {"case_no": "C404", "agent_extension": "1001"}, 404, "case_not_found"),
        ("callback", {"case_no": CASE, "agent_extension": "10a1"}, 422, "invalid_input"),
        ("callback", {"case_no": CASE}, 422, "invalid_input"),
        ("survey", {"case_no": CASE, "phone": PHONE}, 422, "invalid_input"),
        ("survey", {"case_no": "IVR-NOPHONE"}, 422, "no_phone"),
        ("survey", None, 400, "empty_body"),
    ],
)
async def test_bad_inputs_get_json_errors_and_place_nothing(
    client: TestClient,
    services: Services,
    fake_ami: FakeAmi,
    path: str,
    body: dict[str, str] | None,
    status: int,
    code: str,
) -> None:
    await register(services)
    await register(services, "IVR-NOPHONE", None)
    agent = await token(services, "agent")
    response = await client.post(f"/api/v1/calls/{path}", json=body, headers=agent)
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code
    assert fake_ami.originates() == []


async def test_roles_and_refusals(
    client: TestClient, services: Services, fake_ami: FakeAmi
) -> None:
    await register(services)
    for role in ("agency", "bureau"):
        headers = await token(services, role)
        response = await client.post(
            "/api/v1/calls/survey", json={"case_no": CASE}, headers=headers
        )
        assert response.status == 403
    assert (await client.post("/api/v1/calls/survey", json={"case_no": CASE})).status == 401
    agent = await token(services, "agent")
    missing = await client.get("/api/v1/calls", headers=agent)
    assert missing.status == 422
    await services.ratings.rate(RatingRequest(CASE, 1, "api"), actor="test", now=services.clock())
    rated = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert (rated.status, (await rated.json())["error"]["code"]) == (409, "already_rated")
    services.calls = desk_for(services, fake_ami.url, survey=False)
    off = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert (off.status, (await off.json())["error"]["code"]) == (409, "outbound_survey_off")
    services.calls = desk_for(services, None)
    none = await client.post(
        "/api/v1/calls/callback", json={"case_no": CASE, "agent_extension": "1001"}, headers=agent
    )
    assert (none.status, (await none.json())["error"]["code"]) == (503, "ami_not_configured")
    assert fake_ami.originates() == []


def test_ami_url_is_checked() -> None:
    url = AmiUrl.parse("tcp://pingjia:s%40cret@asterisk:5038")
    assert (url.host, url.port, url.username, url.secret) == ("asterisk", 5038, "pingjia", "s@cret")
    assert str(url) == "tcp://pingjia@asterisk:5038"
    with pytest.raises(ValueError, match="PINGJIA_AMI_URL must look like"):
        AmiUrl.parse("http://asterisk:5038")


def test_a_malformed_ami_url_stops_start_up(tmp_path: Path) -> None:
    """Tried: no scheme, another scheme, no user, a port that is not a number."""
    for bad in ("asterisk:5038", "http://u:s@asterisk:5038", "tcp://asterisk:5038"):
        with pytest.raises(ValidationError, match="tcp://user:secret@host:5038"):
            Settings(_env_file=None, ami_url=bad, data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="PINGJIA_AMI_URL has a bad port"):
        Settings(_env_file=None, ami_url="tcp://u:s@asterisk:ami", data_dir=tmp_path)  # type: ignore[call-arg]
    assert Settings(_env_file=None, ami_url="", data_dir=tmp_path).ami_url is None  # type: ignore[call-arg]
