"""AMI faults a real Asterisk 20 showed (PLATFORM.md, "AMI on a real Asterisk 20.20.1"), against
the fake AMI: an Originate acknowledged after the timeout, an Asterisk that stalls (SIGSTOP) and
places the queued call once it resumes, an Asterisk that is down when an agent asks for a
call, and a call-back whose citizen leg is or is not answered.

Faults tried here: the ack 0.5 s after a 0.2 s timeout, a retry of the case while its call is
`unknown`, a second request while the first call rings, pings unanswered, a report that comes
on a new connection after a reconnect, no AMI at all (port closed) with a 30 s backoff, the
fake restarted on the same port, DIALSTATUS ANSWER / BUSY / an empty one, a UserEvent naming
a call that does not exist, another PBX's events (noise) through the sample eventfilters.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ivr.ami import AmiClient, AmiUrl
from ivr.outbound import AmiDown, CallDesk
from pingjia.app import build_app
from pingjia.composition import Services
from tests.fakes.ami import FakeAmi, OriginatePlan
from tests.test_ivr_ami import CASE, audit_actions, register, token


def quick_desk(services: Services, url: str, **client: Any) -> CallDesk:
    ami = AmiClient(
        AmiUrl.parse(url),
        backoff_start_s=client.pop("backoff_start_s", 0.02),
        backoff_max_s=client.pop("backoff_max_s", 0.1),
        **client,
    )
    ivr = services.profile.ivr.model_copy(update={"outbound_survey": True})
    return CallDesk(
        services.sessions,
        services.profile.model_copy(update={"ivr": ivr}),
        services.vault,
        services.clock,
        ami,
        connect_wait_s=1.0,
        ack_timeout_s=0.2,
        outcome_timeout_s=2.0,
        unknown_hold_s=3.0,
    )


@pytest.fixture
async def desk(services: Services, fake_ami: FakeAmi) -> CallDesk:
    services.calls = quick_desk(services, fake_ami.url)
    assert services.calls.ami is not None
    await services.calls.ami.start()
    assert await services.calls.ami.wait_connected(2.0)
    return services.calls


@pytest.fixture
async def client(aiohttp_client: Any, services: Services, desk: CallDesk) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


async def test_an_ack_after_the_timeout_is_unknown_until_the_late_report_settles_it(
    client: TestClient, services: Services, fake_ami: FakeAmi, desk: CallDesk
) -> None:
    """Ack 0.5 s after the 0.2 s timeout: `unknown`, never `failed`; retries are refused."""
    await register(services)
    agent = await token(services, "agent")
    fake_ami.script_originate(OriginatePlan(ack_delay=0.5, delay=0.2))
    first = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert first.status == 201
    body = await first.json()
    assert body["status"] == "unknown" and "may still place the call" in body["reason"]
    # The agent sees no "failed" and cannot call the citizen a second time meanwhile.
    retry = await client.post(
        "/api/v1/calls/callback", json={"case_no": CASE, "agent_extension": "1001"}, headers=agent
    )
    assert retry.status == 409
    assert (await retry.json())["error"]["code"] == "call_in_progress"
    assert len(fake_ami.originates()) == 1
    await desk.settle()
    [call] = await desk.calls_of(CASE)
    assert (call.status, call.citizen_reached) == ("answered", True)
    actions = await audit_actions(services)
    assert "call.unknown" in actions and actions[-1] == "call.answered"
    assert "call.failed" not in actions
    again = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
    assert again.status == 201  # settled: a new call may be placed


async def test_a_stalled_asterisk_is_dropped_by_ping_and_its_late_report_still_counts(
    services: Services, fake_ami: FakeAmi
) -> None:
    """SIGSTOP: no ack, no ping reply; on SIGCONT the queued call is placed and reported on the
    new connection, and settles the `unknown` row by its ActionID."""
    desk = quick_desk(services, fake_ami.url, ping_interval_s=0.1, ping_timeout_s=0.2)
    assert desk.ami is not None
    await desk.ami.start()
    try:
        assert await desk.ami.wait_connected(2.0)
        await register(services)
        fake_ami.stall()
        fake_ami.script_originate(OriginatePlan(answered=False, reason="5", delay=0.5))
        placed = await desk.request_survey(CASE, "agent:a")
        assert placed.status == "unknown"
        for _ in range(100):  # the unanswered ping drops the connection
            if not desk.ami.connected:
                break
            await asyncio.sleep(0.02)
        assert desk.ami.state == "disconnected"
        assert desk.ami.last_error is not None and "did not answer Ping" in desk.ami.last_error
        await register(services, "C2026112000009")
        with pytest.raises(AmiDown) as down:
            await desk.request_survey("C2026112000009", "agent:a")
        assert down.value.status == 503
        fake_ami.resume()
        assert await desk.ami.wait_connected(6.0)
        await desk.settle()
        [call] = await desk.calls_of(CASE)
        assert (call.status, call.reason, call.citizen_reached) == ("failed", "busy", False)
    finally:
        await desk.close()


async def test_ami_down_answers_503_then_a_request_reconnects_at_once(
    aiohttp_client: Any, services: Services
) -> None:
    """No AMI on the port (backoff 30 s): 503 with a JSON error, nothing written, /healthz and
    /metrics say disconnected; once Asterisk is back the next request connects at once."""
    fake = await FakeAmi().start()
    port = fake.port
    await fake.stop()
    services.calls = quick_desk(
        services, fake.url, backoff_start_s=30.0, backoff_max_s=30.0, retry_gap_s=0.0
    )
    ami = services.calls.ami
    assert ami is not None
    await ami.start()
    client: TestClient = await aiohttp_client(build_app(services))
    await register(services)
    agent = await token(services, "agent")
    try:
        down = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
        assert down.status == 503
        error = (await down.json())["error"]
        assert error["code"] == "ami_unavailable" and "无法连接 Asterisk" in error["message"]
        assert await services.calls.calls_of(CASE) == []
        health = await (await client.get("/healthz")).json()
        assert (health["ami"], health["status"]) == ("disconnected", "degraded")
        assert "pingjia_ami_connected 0.0" in await (await client.get("/metrics")).text()
        back = await FakeAmi().start(port)
        try:
            started = asyncio.get_running_loop().time()
            up = await client.post("/api/v1/calls/survey", json={"case_no": CASE}, headers=agent)
            assert up.status == 201, await up.text()
            assert asyncio.get_running_loop().time() - started < 2.0  # not the 30 s backoff
            health = await (await client.get("/healthz")).json()
            assert (health["ami"], health["status"]) == ("connected", "ok")
            assert "pingjia_ami_connected 1.0" in await (await client.get("/metrics")).text()
            await services.calls.settle()
        finally:
            await back.stop()
    finally:
        await services.calls.close()


async def test_health_without_ami_is_ok_and_has_no_gauge(
    aiohttp_client: Any, services: Services
) -> None:
    """AMI simply not configured: healthy, `not_configured`, no pingjia_ami_connected series."""
    client: TestClient = await aiohttp_client(build_app(services))
    health = await (await client.get("/healthz")).json()
    assert (health["ami"], health["status"]) == ("not_configured", "ok")
    assert "pingjia_ami_connected" not in await (await client.get("/metrics")).text()


@pytest.mark.parametrize(
    ("dial_status", "reached", "audit"),
    [
        ("ANSWER", True, "call.citizen_reached"),
        ("BUSY", False, "call.citizen_not_reached"),
        ("", False, "call.citizen_not_reached"),  # the agent hung up before the dial
    ],
)
async def test_a_callback_records_whether_the_citizen_was_reached(
    client: TestClient,
    services: Services,
    fake_ami: FakeAmi,
    desk: CallDesk,
    dial_status: str,
    reached: bool,
    audit: str,
) -> None:
    """The agent answers (OriginateResponse Success), then the dialplan's UserEvent says what
    the citizen leg did; noise from other channels and a UserEvent for an unknown call are
    ignored."""
    await register(services)
    admin = await token(services, "admin")
    fake_ami.script_originate(OriginatePlan(dial_status=dial_status, dial_delay=0.1))
    placed = await client.post(
        "/api/v1/calls/callback", json={"case_no": CASE, "agent_extension": "1001"}, headers=admin
    )
    assert placed.status == 201
    fake_ami.noise()
    fake_ami.broadcast(
        Event="UserEvent",
        UserEvent="PingjiaCallback",
        PingjiaCall="pingjia-callback-0000000000000000",
        DialStatus="ANSWER",
    )
    await asyncio.sleep(0.3)
    await desk.settle()
    listed = await client.get("/api/v1/calls", params={"case_no": CASE}, headers=admin)
    [item] = (await listed.json())["items"]
    assert item["status"] == "answered"  # the agent's phone
    assert item["dial_status"] == (dial_status or "NOT_DIALLED")
    assert item["citizen_reached"] is reached
    assert (await audit_actions(services))[-1] == audit


async def test_close_ends_the_reconnecting_even_when_a_connect_swallows_the_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Python 3.11 `asyncio.wait_for` turns a cancel that meets a finishing connect into the
    connect's own outcome (here: OSError, as when Asterisk is down). Before the closing flag the
    supervisor took that for one more failed attempt and reconnected forever, so `close` (and
    with it `pingjia serve`'s shutdown and a test's teardown) never returned."""
    attempts = 0
    third_connect = asyncio.Event()  # set while the third attempt is under way

    async def refused_even_when_cancelled(self: AmiClient) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            third_connect.set()
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            pass  # what wait_for does when the inner future is already done
        raise OSError("Connection refused")

    monkeypatch.setattr(AmiClient, "connect_once", refused_even_when_cancelled)
    url = AmiUrl.parse("tcp://u:s@127.0.0.1:1")
    ami = AmiClient(url, backoff_start_s=0.001, backoff_max_s=0.002)
    await ami.start()
    await third_connect.wait()  # close while a connect is under way
    closing = asyncio.create_task(ami.close())
    # Not wait_for: the old close suppressed wait_for's own cancel too, and hung the test.
    await asyncio.wait({closing}, timeout=1.0)
    assert closing.done(), "close waited on a supervisor that went on reconnecting"
    ended = attempts
    await asyncio.sleep(0.05)
    assert attempts == ended, "the supervisor went on reconnecting after close"
