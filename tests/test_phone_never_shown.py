"""The raw phone number never leaves in clear, and secrets are never logged.

One case with a number, a bad rating that repeats the number in its reason (so a ticket and
the central store's outbox items exist), a refused request that carries the number; then every
place a number could leak is read: the log (DEBUG), the API's answers and error bodies, the
console's ticket page and statistics CSV, the outbox payloads. The bearer token, the secret key
and the Twilio auth token must not be in the log either.
"""

from __future__ import annotations

import io
import re
from typing import Any

from sqlalchemy import select

from pingjia import logs
from pingjia.app import build_app
from pingjia.composition import Services
from rating.outbox.models import OutboxItem

PHONE = "13987658765"
AGENCY = "台山市市场监督管理局"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def test_no_raw_number_anywhere_and_no_secret_in_logs(
    aiohttp_client: Any, services: Services
) -> None:
    stream = io.StringIO()
    logs.configure("DEBUG", "console", stream=stream)
    bodies: list[str] = []
    try:
        client = await aiohttp_client(build_app(services))
        token = await services.tokens.create("admin", "privacy", services.clock())
        headers = {"Authorization": f"Bearer {token}"}
        case = {
            "case_no": "P1",
            "kind": "complaint",
            "phone": PHONE,
            "completed_at": "2026-11-20T09:00:00+08:00",
            "agency": AGENCY,
        }
        created = await client.post("/api/v1/services", json=case, headers=headers)
        assert created.status == 201
        rating = {
            "case_no": "P1",
            "level": 4,
            "tags": ["staff_passive"],
            "reason": f"回电 {PHONE} 没人接",
        }
        rated = await client.post("/api/v1/ratings", json=rating, headers=headers)
        assert rated.status == 201, await rated.text()
        ticket_no = (await rated.json())["ticket"]["ticket_no"]
        bodies.append(await created.text())
        bodies.append(await rated.text())
        # Refused requests that carry the number: their error bodies must not echo it.
        for bad in (
            {**case, "case_no": "P2", "phone": PHONE + "9"},
            {**case, "case_no": "P3", "kind": PHONE},
            {**case, "case_no": "P4", "unknown": PHONE},
        ):
            refused = await client.post("/api/v1/services", json=bad, headers=headers)
            assert refused.status == 422
            bodies.append(await refused.text())
        for path in (
            "/api/v1/evaluations?case_no=P1",
            f"/api/v1/tickets/{ticket_no}",
            "/api/v1/tickets",
        ):
            answer = await client.get(path, headers=headers)
            assert answer.status == 200
            bodies.append(await answer.text())
        page = await client.get("/console/signin")
        signed = await client.post(
            "/console/signin",
            data={"csrf": csrf_of(await page.text()), "token": token},
            allow_redirects=False,
        )
        assert signed.status == 303
        for path in (
            f"/console/tickets/{ticket_no}",
            "/console/tickets",
            "/console/stats.csv?from=2026-11-01&to=2026-11-30&group_by=agency",
        ):
            answer = await client.get(path)
            assert answer.status == 200, path
            bodies.append(await answer.text())
        async with services.sessions() as session:
            payloads = [
                repr(item.payload) for item in (await session.scalars(select(OutboxItem))).all()
            ]
        assert payloads, "a bad rating puts items for the central store in the outbox"
    finally:
        logs.configure("WARNING", "console", stream=io.StringIO())
    output = stream.getvalue()
    assert output, "the log was captured"
    for where, text in [("log", output), *(("answer", b) for b in bodies)] + [
        ("outbox", p) for p in payloads
    ]:
        assert PHONE not in text, where
        assert "139 8765 8765" not in text and "1398765" not in text, where
    for secret in (token, "test-secret-key"):
        assert secret not in output
