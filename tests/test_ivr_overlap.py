"""The database's time overlaps the prompts: the case check runs while the greeting plays, the
write while the thank-you plays (rating and survey), and calls at once share transactions.

Runs on SQLite and PostgreSQL (the `services` fixture). Bad inputs tried: a database that takes
300 ms for the start-of-call check, and for each write; a case rated through another channel
before the call, found during the greeting or only after the caller gave a level; a survey
callee who hangs up during the thank-you; twenty calls at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from asterisk_sim.caller import Event, Hang, Key, ScriptedCaller
from asterisk_sim.simulator import CallResult, Simulator
from ivr.flows import IvrContext, runners
from ivr.flows import rating as rating_flow
from ivr.flows.rating import CHECK_WAIT_S
from ivr.server import AgiServer
from pingjia.composition import Services
from pingjia.ivr_server import IvrServer, ivr_context
from rating.cases.models import Rating
from rating.ratings.requests import RatingRequest
from rating.ratings.service import RatingService
from rating.tickets.models import Ticket
from tests.sql_count import counting
from tests.test_ivr_flow import SOUNDS, played, register


class SlowRatings(RatingService):
    """A database that takes `delay` s per rating write and per start-of-call check."""

    delay = 0.3
    slow_checks = False
    written_at: float | None = None
    busy = 0
    most_busy = 0

    async def _timed(self, work: Callable[[], Awaitable[Any]], slow: bool) -> Any:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            if slow:
                await asyncio.sleep(self.delay)
            return await work()
        finally:
            self.busy -= 1

    async def rate(self, *args: Any, **kwargs: Any) -> Any:
        outcome = await self._timed(lambda: super(SlowRatings, self).rate(*args, **kwargs), True)
        self.written_at = time.perf_counter()
        return outcome

    async def case_status(self, *args: Any, **kwargs: Any) -> Any:
        work = lambda: super(SlowRatings, self).case_status(*args, **kwargs)  # noqa: E731
        return await self._timed(work, self.slow_checks)


class Turnarounds:
    """An AgiObserver keeping each command's turnaround."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def started(self, script: str) -> None: ...
    def finished(self, script: str, outcome: str) -> None: ...
    def rejected(self) -> None: ...

    def command(self, command: str, turnaround_s: float) -> None:
        self.seen.append((command, turnaround_s))


def real_time(**prompts: float) -> Callable[[str], Awaitable[None]]:
    """Asterisk answers STREAM FILE once the prompt has played (or a key barged in)."""

    async def hold(line: str) -> None:
        for prompt, seconds in prompts.items():
            if prompt in line:
                await asyncio.sleep(seconds)

    return hold


async def call(
    services: Services,
    ratings: SlowRatings,
    events: list[Event],
    script: str = "rating?case=C1",
    **hold: float,
) -> tuple[CallResult, Turnarounds, IvrContext, float]:
    observer = Turnarounds()
    context = IvrContext(ratings=ratings, clock=services.clock, profile=services.profile)
    server = AgiServer(runners(context), observer=observer)
    await server.start("127.0.0.1", 0)
    simulator = Simulator(ScriptedCaller(events), SOUNDS, before_reply=real_time(**hold))
    try:
        result = await simulator.call("127.0.0.1", server.port, script)
        ended_at = time.perf_counter()
    finally:
        await server.close()
    return result, observer, context, ended_at


async def count(services: Services, model: Any) -> int:
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def slow(services: Services, *, checks: bool = False) -> SlowRatings:
    ratings = SlowRatings(services.sessions, services.profile, services.vault)
    ratings.slow_checks = checks
    return ratings


@pytest.mark.parametrize("hang_up", [False, True], ids=["thanked", "hung-up-in-thanks"])
@pytest.mark.parametrize("script", ["rating", "survey"])
async def test_the_write_overlaps_the_thank_you_and_ends_before_the_session(
    services: Services, hang_up: bool, script: str
) -> None:
    ratings = slow(services)
    await register(services, "C1")
    events: list[Event] = [Key("2"), Hang(after_ms=10)] if hang_up else [Key("2")]
    result, observer, context, ended_at = await call(
        services, ratings, events, f"{script}?case=C1", rating_thanks=0.4, survey_thanks=0.4
    )
    assert played(result)[-1] == f"{script}_thanks"
    # The session ended after the write: the rating is there the moment the call is over.
    assert ratings.written_at is not None and ratings.written_at <= ended_at
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 2
    assert context.writes == set()
    # The 300 ms write ran while the thank-you played: no command waited for it.
    assert observer.seen and max(t for _, t in observer.seen) < 0.25, observer.seen


async def test_a_slow_database_at_call_start_does_not_delay_the_greeting(
    services: Services,
) -> None:
    ratings = slow(services, checks=True)
    result, observer, _, _ = await call(services, ratings, [Key("4", 0), Key("1", 0), Key("#")])
    assert result.commands[0].startswith("STREAM FILE pingjia/cmn/rating_greeting")
    # The 300 ms check (registering the unknown case C1) runs behind the greeting; only the
    # level key, pressed at once, waits for its end (to say "already rated" before the
    # reasons), never longer than CHECK_WAIT_S; every other command goes at once, but HANGUP,
    # which waits for the 300 ms write's commit (the thank-you ends at once in virtual time;
    # on a phone it plays 5 s over the write).
    turnarounds = [t for _, t in observer.seen]
    assert turnarounds[0] < 0.25, observer.seen
    assert turnarounds[1] < CHECK_WAIT_S, observer.seen
    assert max(turnarounds[2:-1]) < 0.25, observer.seen
    assert observer.seen[-1][0] == "HANGUP" and observer.seen[-1][1] >= ratings.delay
    assert played(result)[-1] == "rating_thanks"
    evaluation = await services.ratings.evaluation("C1")
    assert evaluation.case.source == "ivr" and evaluation.ratings[0].tags == ["staff_passive"]


async def rated_by_sms(services: Services) -> None:
    await register(services, "C1")
    request = RatingRequest("C1", 3, "sms", source_ref="sms:1", require_reason=False)
    await services.ratings.rate(request, actor="test", now=services.clock())


async def test_a_case_found_rated_during_the_greeting_hears_already_rated(
    services: Services,
) -> None:
    await rated_by_sms(services)
    ratings = slow(services, checks=True)
    # The caller presses 4 one second into the greeting (0.4 s real): the check is done.
    result, _, _, _ = await call(services, ratings, [Key("4", 1000)], rating_greeting=0.4)
    assert played(result) == ["rating_greeting", "rating_already"]
    (rating,) = (await services.ratings.evaluation("C1")).ratings
    assert (rating.level, rating.channel) == (3, "sms")
    assert await count(services, Ticket) == 0


async def test_a_case_found_rated_by_a_caller_who_barged_in_hears_it_at_once(
    services: Services,
) -> None:
    await rated_by_sms(services)
    ratings = slow(services, checks=True)
    # The level key at once: the flow waits out the 300 ms check, then answers before any
    # reason menu or voice offer.
    result, _, _, _ = await call(services, ratings, [Key("5", 0), Key("1", 0), Key("#")])
    assert played(result) == ["rating_greeting", "rating_already"]
    assert await count(services, Rating) == 1


async def test_a_case_found_rated_after_the_call_is_thanked_and_written_once(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rated_by_sms(services)
    ratings = slow(services, checks=True)
    monkeypatch.setattr(rating_flow, "CHECK_WAIT_S", 0.05)  # a database slower than the wait
    # Every key at once: the 300 ms check is still running when the level is saved.
    result, observer, _, _ = await call(services, ratings, [Key("5", 0), Key("1", 0), Key("#")])
    assert played(result)[-1] == "rating_thanks"  # not held on the line for the database
    # Only HANGUP waits: for the write, which waits for the check and then writes nothing.
    assert max(t for c, t in observer.seen if c != "HANGUP") < 0.25, observer.seen
    assert await count(services, Rating) == 1  # the SMS rating alone: nothing written twice
    assert await count(services, Ticket) == 0


async def test_calls_starting_and_ending_together_share_transactions(services: Services) -> None:
    ratings = services.ratings
    context = IvrContext(ratings=ratings, clock=services.clock, profile=services.profile)
    server = AgiServer(runners(context))
    await server.start("127.0.0.1", 0)
    try:
        with counting(services.engine) as sql:
            results = await asyncio.gather(
                *(
                    Simulator(ScriptedCaller([Key("2", 0)]), SOUNDS).call(
                        "127.0.0.1", server.port, f"rating?case=Q{i}"
                    )
                    for i in range(20)
                )
            )
    finally:
        await server.close()
    assert all(played(r)[-1] == "rating_thanks" for r in results)
    # 20 unknown cases registered and 20 ratings written in far fewer transactions.
    assert 2 <= sql.transactions < 20, sql  # 20 checks and 20 writes: one each would be 40
    for i in range(20):
        evaluation = await services.ratings.evaluation(f"Q{i}")
        assert evaluation.case.source == "ivr" and evaluation.ratings[0].level == 2


async def test_serve_closes_only_after_the_writes_of_cancelled_calls(services: Services) -> None:
    ratings = slow(services)
    ratings.delay = 0.5
    await register(services, "C1")
    context = ivr_context(services)
    context.ratings = ratings
    # Sized to the engine's pool (rating/db/engine.py): 5 + 10 overflow on SQLite, 20 on PostgreSQL.
    assert context.db_slots == (20 if services.engine.dialect.name == "postgresql" else 15)
    server = IvrServer(context, services)
    await server.start("127.0.0.1", 0)
    thanking = asyncio.Event()

    async def thank_slowly(line: str) -> None:
        if "rating_thanks" in line:  # SAVE has started the write; the thank-you plays 2 s
            thanking.set()
            await asyncio.sleep(2)

    simulator = Simulator(ScriptedCaller([Key("2")]), SOUNDS, before_reply=thank_slowly)
    dialing = asyncio.create_task(simulator.call("127.0.0.1", server.port, "rating?case=C1"))
    await thanking.wait()
    await server.close(grace=0.05)  # shorter than the write: the call is cancelled
    assert ratings.written_at is not None and context.writes == set()
    assert (await services.ratings.evaluation("C1")).ratings[0].level == 2
    await dialing
