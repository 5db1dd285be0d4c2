"""A case completed in the future is refused (issue 16.8), on SQLite and on PostgreSQL.

Bad inputs tried here: `completed_at` in 2099, six minutes ahead of the server's clock, and
ahead by an offset trick (a local time that is in the future once read in UTC). Each gets a
422 `completed_in_future` and writes no case, so no citizen is invited.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from pingjia.composition import Services
from rating.cases.models import Case
from tests.test_api import agent, client, count, service_body  # noqa: F401 (fixtures)


async def test_a_completion_time_ahead_of_the_clock_is_refused(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    now = services.clock()
    ahead = [
        "2099-01-01T00:00:00+08:00",
        (now + timedelta(minutes=6)).isoformat(),
        (now + timedelta(minutes=6)).replace(tzinfo=None).isoformat() + "-01:00",
    ]
    for i, when in enumerate(ahead):
        body = service_body(f"F{i}", completed_at=when)
        response = await client.post("/api/v1/services", json=body, headers=agent)
        assert response.status == 422, (when, await response.text())
        error: dict[str, Any] = (await response.json())["error"]
        assert error["code"] == "completed_in_future" and "晚于服务器时间" in error["message"]
    assert await count(services, Case) == 0

    # A clock a little ahead of ours (up to five minutes) is tolerated, not refused.
    body = service_body("OK", completed_at=(now + timedelta(minutes=4)).isoformat())
    response = await client.post("/api/v1/services", json=body, headers=agent)
    assert response.status == 201, await response.text()
