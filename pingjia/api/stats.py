"""GET /api/v1/stats (SPEC §4): bureau and admin only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from pingjia.api.patterns import IsoDateTime
from pingjia.api.routing import Api, Call
from pingjia.api.views import SERVICES
from rating.stats.service import Figures

api = Api()
READERS = frozenset({"bureau", "admin"})


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: IsoDateTime = Field(alias="from", description="ISO 8601 with offset, inclusive")
    end: IsoDateTime = Field(alias="to", description="ISO 8601 with offset, exclusive")
    group_by: Literal["agency", "agent", "channel", "day"] | None = Field(
        None, description="agency, agent, channel or day (local)"
    )


class FiguresOut(BaseModel):
    key: str
    count: int
    levels: dict[str, int] = Field(description="adopted ratings per level 1-5")
    satisfaction_rate: float | None = Field(description="share of 非常满意, 满意, 基本满意")
    average_score: float | None
    tickets: int
    verified_on_time: int
    rectified: int
    not_adopted: int
    verified_on_time_rate: float | None
    rectified_rate: float | None
    not_adopted_rate: float | None


class StatsOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    group_by: str | None
    profile: str
    totals: FiguresOut
    groups: list[FiguresOut]


def figures_out(fig: Figures) -> FiguresOut:
    return FiguresOut(
        key=fig.key,
        count=fig.count,
        levels={str(k): v for k, v in fig.levels.items()},
        satisfaction_rate=fig.satisfaction_rate,
        average_score=fig.average_score,
        tickets=fig.tickets,
        verified_on_time=fig.verified_on_time,
        rectified=fig.rectified,
        not_adopted=fig.not_adopted,
        verified_on_time_rate=fig.share(fig.verified_on_time),
        rectified_rate=fig.share(fig.rectified),
        not_adopted_rate=fig.share(fig.not_adopted),
    )


@api.route(
    "GET",
    "/api/v1/stats",
    summary="Satisfaction rate, average score, counts per level, ticket outcomes; by group",
    tag="stats",
    query=StatsQuery,
    responses={200: StatsOut},
    roles=READERS,
)
async def stats(call: Call[BaseModel, StatsQuery]) -> web.Response:
    services = call.request.app[SERVICES]
    q = call.query
    total, groups = await services.stats.figures(q.start, q.end, q.group_by)
    out = StatsOut(
        start=q.start,
        end=q.end,
        group_by=q.group_by,
        profile=services.profile.name,
        totals=figures_out(total),
        groups=[figures_out(g) for g in groups],
    )
    return web.Response(text=out.model_dump_json(by_alias=True), content_type="application/json")
