"""Outbound survey ratings (电话回访) are told apart from ratings after the citizen's own call,
while the central store still gets 电话 for both.

Through the FastAGI server as `pingjia serve` starts it, with the simulator as Asterisk: one call
into the `survey` script, one into `rating`. Faults and bad inputs tried here: a profile file
written before the `survey` channel existed (no channel code for it), an API client that tries
to post `channel: survey` itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import Simulator
from asterisk_sim.softphone import prompt_sounds
from pingjia.app import build_app
from pingjia.composition import Services
from pingjia.ivr_server import start_agi
from prompts.catalog import AUDIO
from rating.cases.registration import ServiceRecord
from rating.outbox.models import OutboxItem
from rating.policy.profile import CentralStoreMapping
from tests.conftest import make_settings

SOUNDS = prompt_sounds(AUDIO)
COMPLETED = datetime(2026, 11, 20, 9, tzinfo=UTC)


async def test_survey_ratings_have_their_own_channel_and_stay_phone_for_the_store(
    services: Services, tmp_path: Path, aiohttp_client: Any
) -> None:
    """A survey call rates as `survey`, the citizen's own call as `ivr`; stats by channel
    separate them; both are the profile's 电话 code (6) in the central-store outbox."""
    services.settings = make_settings(services.settings.database_url, tmp_path, agi_port=0)
    for case_no in ("C-SURVEY", "C-INBOUND"):
        record = ServiceRecord(case_no, "complaint", "13812345678", COMPLETED)
        await services.ratings.register(record, actor="test", now=services.clock())
    server = await start_agi(services)
    try:
        for script, case_no in (("survey", "C-SURVEY"), ("rating", "C-INBOUND")):
            await Simulator(ScriptedCaller([Key("2")]), SOUNDS).call(
                "127.0.0.1", server.port, f"{script}?case={case_no}"
            )
    finally:
        await server.close()
    survey = (await services.ratings.evaluation("C-SURVEY")).ratings[0]
    inbound = (await services.ratings.evaluation("C-INBOUND")).ratings[0]
    assert (survey.channel, survey.level, survey.adopted) == ("survey", 2, True)
    assert (inbound.channel, inbound.level) == ("ivr", 2)
    now = services.clock()
    _, groups = await services.stats.figures(
        now - timedelta(days=1), now + timedelta(days=1), "channel"
    )
    assert {g.key: g.count for g in groups} == {"ivr": 1, "survey": 1}
    async with services.sessions() as session:
        payloads = (await session.execute(select(OutboxItem.payload))).scalars().all()
    codes = {p["case_no"]: p["channel"] for p in payloads if "channel" in p}
    assert codes == {"C-SURVEY": "6", "C-INBOUND": "6"}
    # The API shows the channel as stored, and documents the new value.
    client = await aiohttp_client(build_app(services))
    doc = await (await client.get("/api/openapi.json")).json()
    assert (
        "survey"
        in doc["components"]["schemas"]["RatingOut"]["properties"]["channel"]["description"]
    )


def test_an_older_profile_without_a_survey_code_gets_the_phone_code() -> None:
    """A profile written before the channel existed: survey takes ivr's code, not an error."""
    codes = {"ivr": "6", "sms": "7", "web": "2", "system": "6", "api": "5"}
    mapping = CentralStoreMapping.model_validate(
        {
            "level_codes": {str(n): str(n) for n in range(1, 6)},
            "channel_codes": codes,
            "region_code": "440781",
        }
    )
    assert mapping.channel_codes["survey"] == "6"
    with pytest.raises(ValidationError, match="channel_codes"):
        CentralStoreMapping.model_validate(
            {
                "level_codes": {str(n): str(n) for n in range(1, 6)},
                "channel_codes": {"sms": "7", "web": "2", "system": "6", "api": "5"},
                "region_code": "440781",
            }
        )


async def test_the_api_does_not_take_survey_ratings(
    services: Services, aiohttp_client: Any
) -> None:
    """Only pingjia's own outbound call rates as `survey`: a client posting it gets 422."""
    client = await aiohttp_client(build_app(services))
    made = await services.tokens.create("agent", "agent-1", services.clock())
    record = ServiceRecord("C1", "complaint", "13812345678", COMPLETED)
    await services.ratings.register(record, actor="test", now=services.clock())
    response = await client.post(
        "/api/v1/ratings",
        json={"case_no": "C1", "level": 2, "channel": "survey"},
        headers={"Authorization": f"Bearer {made}"},
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "invalid_input"
