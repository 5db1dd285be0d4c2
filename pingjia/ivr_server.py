"""The IVR part composed for `pingjia serve`: the flows' context, the scripts, the FastAGI
server that drains the calls' writes before the database closes."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from ivr.flows import IvrContext, Runner, runners
from ivr.flows.cases import Ratings
from ivr.server import AgiServer
from pingjia.composition import Services
from pingjia.ivr_prompts import check_prompts, prompt_check
from rating.cases.models import Evaluation
from rating.cases.registration import ServiceRecord
from rating.cases.status import CaseStatus
from rating.ratings.requests import RatingOutcome, RatingRequest


def pool_capacity(engine: AsyncEngine) -> int:
    """Connections the engine's pool hands out at most (pool size plus overflow)."""
    pool = engine.pool
    size = pool.size() if isinstance(pool, QueuePool) else 1
    return max(1, size + max(0, int(getattr(pool, "_max_overflow", 0))))


def ivr_context(services: Services) -> IvrContext:
    """The flows' context; their database work is admitted up to the pool's capacity, so a
    burst of calls queues in-process instead of timing out on the pool's checkout."""
    return IvrContext(
        ratings=services.ratings,
        clock=services.clock,
        profile=services.profile,
        recordings_dir=services.settings.recordings_dir,
        db_slots=pool_capacity(services.engine),
    )


class ChannelRatings:
    """The rating service as one AGI script sees it: its phone ratings are recorded under
    another channel. Everything else (its batches, its profile) is `inner`'s."""

    def __init__(self, inner: Ratings, channel: str) -> None:
        self._inner = inner
        self._channel = channel

    async def case_status(self, record: ServiceRecord, *, actor: str, now: datetime) -> CaseStatus:
        return await self._inner.case_status(record, actor=actor, now=now)

    async def evaluation(self, case_no: str) -> Evaluation:
        return await self._inner.evaluation(case_no)

    async def rate(self, request: RatingRequest, *, actor: str, now: datetime) -> RatingOutcome:
        if request.channel == "ivr":
            request = dataclasses.replace(request, channel=self._channel)
        return await self._inner.rate(request, actor=actor, now=now)


def script_runners(context: IvrContext) -> dict[str, Runner]:
    """The flows bound to the context; the `survey` script (an outbound rating call pingjia
    placed, 电话回访) records its ratings as channel `survey`, so reports tell it from a rating
    after the citizen's own call. Its context shares the calls' write set (one drain)."""
    table = runners(context)
    survey = dataclasses.replace(
        context, ratings=ChannelRatings(context.ratings, "survey"), writes=context.writes
    )
    table["survey"] = runners(survey)["survey"]
    return table


class IvrServer(AgiServer):
    """The FastAGI server of `pingjia serve`: closing it also waits for the ratings being
    written (a write outlives a call cancelled at shutdown) before the database closes."""

    write_grace = 30.0  # a write's own retries take a few seconds at most

    def __init__(self, context: IvrContext, services: Services) -> None:
        super().__init__(
            script_runners(context),
            observer=services.metrics.agi,
            prompt_check=prompt_check(context),
        )
        self.context = context

    async def close(self, grace: float = 5.0) -> None:
        await super().close(grace)
        await self.context.drain(self.write_grace)


async def start_agi(services: Services) -> AgiServer:
    """Check the prompts, then serve FastAGI on PINGJIA_BIND:PINGJIA_AGI_PORT."""
    check_prompts(services.profile)
    server = IvrServer(ivr_context(services), services)
    await server.start(services.settings.bind, services.settings.agi_port)
    if services.calls.ami is not None:
        # In the background: an Asterisk that is down or restarting must not stop pingjia.
        await services.calls.ami.start()
    return server
