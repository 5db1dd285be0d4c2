"""The `outbound_surveys` sweep: the scheduler calls pending cases into the `survey` flow.

On SQLite and PostgreSQL (the `services` fixture) against the fake AMI server, with the fake
clock (START is 18:00 in Taishan; quiet hours 21:00-08:00). Bad inputs and faults tried here:
a case completed too recently, a case completed long ago but registered only now, a case
already rated by SMS, a case without a number, a number that opted out of SMS, a case due at
night, an Originate refused (`Response: Error`) followed by a due case in the same run, a busy
line (OriginateResponse `Failure`), a third try after two failed ones, a backlog over the
per-run bound, Asterisk unreachable when the run starts, two processes sweeping one
PostgreSQL at the same instant, the profile switch off, no PINGJIA_AMI_URL; and in the
profile: a negative delay, zero tries, a zero retry interval, tries as a string, a delay that
reaches the default rating.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select

from ivr.models import OutboundCall
from ivr.outbound import CallDesk
from ivr.survey_sweep import OutboundSurveys
from pingjia.background import build_background
from pingjia.composition import Services, build_services
from rating.cases.models import Case
from rating.cases.registration import ServiceRecord
from rating.errors import ProfileError
from rating.policy.loader import load_profile
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from sms.storage.repository import SmsRepository
from tests.conftest import _clean_postgres, make_settings
from tests.fakes.ami import FakeAmi, OriginatePlan
from tests.fakes.clock import FakeClock
from tests.test_ivr_ami import desk_for

PHONE = "13812345678"


async def connected_desk(services: Services, url: str | None, *, survey: bool = True) -> CallDesk:
    """The call desk of a profile that rates by phone (or not), wired into `services`."""
    desk = desk_for(services, url, survey=survey)
    services.profile = desk.profile
    services.calls = desk
    if desk.ami is not None:
        await desk.ami.start()
        assert await desk.ami.wait_connected(2.0)
    return desk


@pytest.fixture
async def desk(services: Services, fake_ami: FakeAmi) -> CallDesk:
    return await connected_desk(services, fake_ami.url)


@pytest.fixture
def sweep(desk: CallDesk) -> OutboundSurveys:
    return OutboundSurveys(desk, owner="test")


async def register(
    services: Services, case_no: str, *, completed_ago: timedelta = timedelta(hours=2), **kw: str
) -> None:
    now = services.clock()
    phone = kw.get("phone", PHONE) or None
    record = ServiceRecord(case_no, "complaint", phone, now - completed_ago)
    await services.ratings.register(record, actor="test", now=now)


async def calls(services: Services) -> list[tuple[str, str, str]]:
    """(case number, status, requested_by) of every call, in order."""
    query = (
        select(Case.case_no, OutboundCall.status, OutboundCall.requested_by)
        .join(Case, Case.id == OutboundCall.case_id)
        .order_by(OutboundCall.id)
    )
    async with services.sessions() as session:
        return [(a, b, c) for a, b, c in (await session.execute(query)).all()]


def called(fake: FakeAmi) -> list[str]:
    return [str(o["Variable"][0]).removeprefix("CASE_NO=") for o in fake.originates()]


async def test_a_due_case_is_called_once_and_recorded(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, desk: CallDesk, sweep: OutboundSurveys
) -> None:
    await register(services, "C1")
    clock.advance(minutes=31)
    assert await sweep(clock()) == 1
    assert called(fake_ami) == ["C1"]
    assert fake_ami.originates()[0]["Context"] == "pingjia-outbound-survey"
    await desk.settle()
    assert await calls(services) == [("C1", "answered", "scheduler")]
    assert await sweep(clock()) == 0  # the next run: tried today already
    clock.advance(minutes=1)
    assert await sweep(clock()) == 0
    assert called(fake_ami) == ["C1"]


@pytest.mark.article("sanmenxia", 4)
@pytest.mark.article("taishan", 4)
async def test_cases_not_due_are_left_alone(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, sweep: OutboundSurveys
) -> None:
    await register(services, "RECENT", completed_ago=timedelta(minutes=5))
    await register(services, "LATE", completed_ago=timedelta(days=2))  # registered only now
    await register(services, "RATED")
    await register(services, "NOPHONE", phone="")
    await register(services, "OPTED", phone="13900001111")
    rated = RatingRequest("RATED", 2, "sms", source_ref="sms:SM1")
    await services.ratings.rate(rated, actor="test", now=clock())
    async with services.sessions() as session:
        opted_hash = services.vault.lookup_hash("13900001111")
        await SmsRepository(session).opt_out(opted_hash, clock(), "sms:SM2")
        await session.commit()
    clock.advance(minutes=20)
    assert await sweep(clock()) == 0  # nothing is 30 minutes past registration yet
    clock.advance(minutes=11)
    assert await sweep(clock()) == 2
    assert sorted(called(fake_ami)) == ["LATE", "RECENT"]  # the rest never


async def test_quiet_hours_hold_the_call_until_the_morning(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, sweep: OutboundSurveys
) -> None:
    clock.advance(hours=3)  # 21:00 in Taishan: quiet
    await register(services, "NIGHT")
    clock.advance(minutes=31)
    assert await sweep(clock()) == 0
    clock.advance(hours=10, minutes=28)  # 07:59
    assert await sweep(clock()) == 0
    assert fake_ami.originates() == []
    clock.advance(minutes=1)  # 08:00
    assert await sweep(clock()) == 1
    assert called(fake_ami) == ["NIGHT"]


async def test_failed_calls_are_retried_a_day_later_and_only_survey_tries_times(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, desk: CallDesk, sweep: OutboundSurveys
) -> None:
    assert desk.profile.ivr.survey_tries == 2 and desk.profile.ivr.survey_retry_hours == 24
    fake_ami.script_originate(
        OriginatePlan(answered=False, reason="5"), OriginatePlan(error="Extension does not exist.")
    )
    await register(services, "BUSY")
    clock.advance(minutes=31)
    assert await sweep(clock()) == 1
    await desk.settle()
    clock.advance(hours=23, minutes=59)
    assert await sweep(clock()) == 0  # not before the retry interval
    clock.advance(minutes=1)
    assert await sweep(clock()) == 1  # refused by Asterisk this time: recorded too
    await desk.settle()
    clock.advance(days=1, minutes=1)
    assert await sweep(clock()) == 0  # two tries spent
    clock.advance(days=1)
    assert await sweep(clock()) == 0
    assert called(fake_ami) == ["BUSY", "BUSY"]
    [first, second] = await calls(services)
    assert first == ("BUSY", "failed", "scheduler") and second[1] == "failed"


async def test_an_agents_call_counts_as_a_try(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, desk: CallDesk, sweep: OutboundSurveys
) -> None:
    await register(services, "AGENT")
    await desk.request_survey("AGENT", actor="agent-1")
    clock.advance(minutes=31)
    assert await sweep(clock()) == 0  # called today by an agent
    clock.advance(days=1)
    assert await sweep(clock()) == 1
    clock.advance(days=2)
    assert await sweep(clock()) == 0
    assert called(fake_ami) == ["AGENT", "AGENT"]


async def test_a_refused_case_does_not_stop_the_run(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, desk: CallDesk, sweep: OutboundSurveys
) -> None:
    fake_ami.script_originate(OriginatePlan(error="Extension does not exist."))
    await register(services, "FIRST", completed_ago=timedelta(hours=5))
    await register(services, "SECOND", completed_ago=timedelta(hours=4))
    clock.advance(minutes=31)
    assert await sweep(clock()) == 2
    await desk.settle()
    found = await calls(services)
    assert found == [("FIRST", "failed", "scheduler"), ("SECOND", "answered", "scheduler")]


async def test_a_run_calls_at_most_its_bound_oldest_first(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, desk: CallDesk
) -> None:
    for n in range(5):
        await register(services, f"B{n}", completed_ago=timedelta(hours=10 - n))
    clock.advance(minutes=31)
    sweep = OutboundSurveys(desk, owner="test", per_run=3)
    assert await sweep(clock()) == 3
    assert called(fake_ami) == ["B0", "B1", "B2"]
    assert await sweep(clock()) == 2
    assert called(fake_ami) == ["B0", "B1", "B2", "B3", "B4"]


async def test_asterisk_unreachable_spends_no_tries(
    services: Services, clock: FakeClock, fake_ami: FakeAmi, desk: CallDesk
) -> None:
    await register(services, "DOWN")
    clock.advance(minutes=31)
    await fake_ami.stop()
    assert desk.ami is not None
    for _ in range(100):  # until the client has seen the connection go
        if not desk.ami.connected:
            break
        await asyncio.sleep(0.01)
    desk.connect_wait_s = 0.2
    assert await OutboundSurveys(desk, owner="test")(clock()) == 0
    assert await calls(services) == []  # still due for the next run


@pytest.mark.postgres
async def test_two_processes_call_each_case_once(
    postgres_url: str, tmp_path: Path, clock: FakeClock, fake_ami: FakeAmi
) -> None:
    await _clean_postgres(postgres_url)
    pair: list[Services] = []
    try:
        for n in range(2):
            settings = make_settings(postgres_url, tmp_path / str(n))
            pair.append(
                await build_services(settings, migrate=False, clock=clock, state=MemoryState())
            )
        for n in range(12):
            await register(pair[0], f"P{n:02d}")
        clock.advance(minutes=31)
        sweeps = [
            OutboundSurveys(await connected_desk(s, fake_ami.url), owner=f"p{i}", per_run=8)
            for i, s in enumerate(pair)
        ]
        done = await asyncio.gather(sweeps[0](clock()), sweeps[1](clock()))
        assert sum(done) == 12 and max(done) <= 8
        assert sorted(called(fake_ami)) == [f"P{n:02d}" for n in range(12)]
        assert list(await asyncio.gather(sweeps[0](clock()), sweeps[1](clock()))) == [0, 0]
        for built in pair:
            await built.calls.settle()
    finally:
        for built in pair:
            await built.close()


# --- registration ----------------------------------------------------------------------------


def sweep_names(services: Services) -> list[str]:
    return [s.name for s in build_background(services).scheduler.sweeps]


async def test_registered_only_when_the_profile_rates_by_phone_and_ami_is_set(
    services: Services, fake_ami: FakeAmi
) -> None:
    await connected_desk(services, fake_ami.url, survey=False)
    assert "outbound_surveys" not in sweep_names(services)
    await services.calls.close()
    await connected_desk(services, fake_ami.url)
    assert "outbound_surveys" in sweep_names(services)
    await services.calls.close()
    await connected_desk(services, None)
    with structlog.testing.capture_logs() as logs:
        assert "outbound_surveys" not in sweep_names(services)
    [line] = [e for e in logs if "outbound_surveys" in e["event"]]
    assert "PINGJIA_AMI_URL" in line["event"] and line["log_level"] == "warning"


# --- profile values --------------------------------------------------------------------------

SHIPPED = "survey_delay_minutes = 30\nsurvey_tries = 2\nsurvey_retry_hours = 24\n"


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        ("survey_delay_minutes = -5", "ivr.survey_delay_minutes", "greater than or equal to 0"),
        ("survey_tries = 0", "ivr.survey_tries", "greater than 0"),
        ("survey_retry_hours = 0", "ivr.survey_retry_hours", "greater than 0"),
        ('survey_tries = "2"', "ivr.survey_tries", "valid integer"),
        (
            "outbound_survey = true\nsurvey_delay_minutes = 10080",
            "ivr.survey_delay_minutes",
            "not before the default rating (7 days)",
        ),
    ],
    ids=["negative delay", "zero tries", "zero retry", "tries as text", "delay past default"],
)
def test_bad_survey_settings_are_refused_at_load(
    tmp_path: Path, edit: str, key: str, reason: str
) -> None:
    text = (Path(__file__).parents[1] / "rating/policy/profiles/taishan.toml").read_text("utf-8")
    assert SHIPPED in text and "outbound_survey = false\n" in text
    text = text.replace("outbound_survey = false\n", "").replace(SHIPPED, edit + "\n")
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert message.startswith(str(path)) and key in message and reason in message, message


def test_shipped_profiles_do_not_call_by_default() -> None:
    for name in ("taishan", "sanmenxia"):
        ivr = load_profile(name).ivr
        assert ivr.outbound_survey is False
        assert (ivr.survey_delay_minutes, ivr.survey_tries, ivr.survey_retry_hours) == (30, 2, 24)
