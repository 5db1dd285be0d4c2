"""HANGUP only after the rating's commit, and what a caller hears when the write fails.

Simulated Asterisk -> FastAGI server -> database (SQLite and PostgreSQL, the `services`
fixture). Bad inputs tried: a write that takes 0.5 s with the thank-you ending at once (virtual
time), for both flows; a database down for the whole call (the check at call start and every
write attempt fail); a database that answers the check and then fails every write; a caller who
hangs up during the thank-you of a slow write. A node killed after HANGUP is
tests/faults/test_ivr_commit.py's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asterisk_sim.caller import Event, Hang, Key, ScriptedCaller
from asterisk_sim.simulator import CallResult, Simulator
from ivr.flows import IvrContext, runners
from ivr.server import AgiServer
from pingjia.composition import Services
from rating.ratings.service import RatingService
from tests.test_ivr_flow import SOUNDS, played, register


class SlowWrites(RatingService):
    """A database that takes 0.5 s for each rating write."""

    async def rate(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.5)
        return await super().rate(*args, **kwargs)


class DownDatabase(RatingService):
    """A database that refuses connections: for the rating writes, and for the check too."""

    check_fails = True
    checks_tried = 0
    writes_tried = 0

    async def case_status(self, *args: Any, **kwargs: Any) -> Any:
        if self.check_fails:
            self.checks_tried += 1
            raise ConnectionRefusedError("connection refused (database down)")
        return await super().case_status(*args, **kwargs)

    async def rate(self, *args: Any, **kwargs: Any) -> Any:
        self.writes_tried += 1
        raise ConnectionRefusedError("connection refused (database down)")


async def dial(
    services: Services,
    ratings: RatingService,
    events: list[Event],
    script: str,
    seen_at_hangup: list[str] | None = None,
) -> CallResult:
    """One call; `seen_at_hangup` gets the case's ratings read the moment HANGUP arrives."""
    context = IvrContext(
        ratings=ratings, clock=services.clock, profile=ratings.profile, save_backoff_s=0.01
    )
    server = AgiServer(runners(context))
    await server.start("127.0.0.1", 0)

    async def at_hangup(line: str) -> None:
        if line == "HANGUP" and seen_at_hangup is not None:
            evaluation = await ratings.evaluation("C1")
            seen_at_hangup.extend(f"{r.channel}:{r.level}" for r in evaluation.ratings)

    try:
        simulator = Simulator(ScriptedCaller(events), SOUNDS, before_reply=at_hangup)
        result = await simulator.call("127.0.0.1", server.port, script)
    finally:
        await server.close()
    assert context.writes == set()  # every write ended before its session
    return result


def made(services: Services, kind: type[RatingService]) -> Any:
    return kind(services.sessions, services.profile, services.vault)


@pytest.mark.parametrize("script", ["rating", "survey"])
async def test_hangup_is_sent_only_once_the_rating_is_committed(
    services: Services, script: str
) -> None:
    await register(services, "C1")
    seen: list[str] = []
    # The thank-you ends at once (virtual time): only the wait for the commit holds HANGUP.
    slow = made(services, SlowWrites)
    result = await dial(services, slow, [Key("2")], f"{script}?case=C1", seen)
    assert played(result)[-1] == f"{script}_thanks" and result.commands[-1] == "HANGUP"
    assert seen == ["ivr:2"]  # the rating was stored when Asterisk got HANGUP


async def test_a_caller_who_hangs_up_during_the_thank_you_is_still_rated(
    services: Services,
) -> None:
    await register(services, "C1")
    slow = made(services, SlowWrites)
    result = await dial(services, slow, [Key("3"), Hang(after_ms=10)], "rating?case=C1")
    assert played(result)[-1] == "rating_thanks" and "HANGUP" not in result.commands
    # The session ended after the write: the rating is there the moment the call is over.
    assert [r.level for r in (await services.ratings.evaluation("C1")).ratings] == [3]


async def test_a_database_down_for_the_whole_call_never_thanks(services: Services) -> None:
    await register(services, "C1")
    down = made(services, DownDatabase)
    result = await dial(services, down, [Key("2")], "rating?case=C1")
    # The check failed at call start, so the flow waited for the write (three attempts, each
    # registering the case first) before the last prompt: the caller hears the apology,
    # never "您的评价已记录".
    assert played(result) == ["rating_greeting", "rating_not_saved"]
    assert result.commands[-1] == "HANGUP" and down.checks_tried == 1 + 3
    evaluation = await services.ratings.evaluation("C1")
    assert evaluation.status == "pending" and evaluation.ratings == []  # asked again by SMS


@pytest.mark.parametrize("script", ["rating", "survey"])
async def test_a_write_failing_after_the_check_is_owned_up_to_before_hangup(
    services: Services, script: str
) -> None:
    await register(services, "C1")
    down = made(services, DownDatabase)
    down.check_fails = False  # up at call start (and for the survey's lookup), then gone
    result = await dial(services, down, [Key("4"), Key("1"), Key("#")], f"{script}?case=C1")
    # The thank-you had already started over the write; the apology follows it.
    assert played(result)[-2:] == [f"{script}_thanks", "rating_not_saved"]
    assert result.commands[-1] == "HANGUP" and down.writes_tried == 3
    assert (await services.ratings.evaluation("C1")).status == "pending"
