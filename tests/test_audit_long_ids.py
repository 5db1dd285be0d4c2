"""An audit line whose record id is longer than its column (found by the PostgreSQL fuzz run:
`PUT /api/v1/agency-contacts` with a 128-character agency answered 500, since the line's
`entity_id` holds 64): the change is made, the line written, the id kept whole in its data.
On SQLite (which stores any length) and PostgreSQL (which refused the line, and the change)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.composition import Services
from rating.access.models import AuditEntry
from tests.test_tickets import client, tokens  # noqa: F401  (fixtures used below)

AGENCY = "台山市" + "市场监督管理局" * 17 + "一" * 6  # 128 characters, the field's bound


async def test_a_128_character_agency_gets_its_contact_and_audit_line(
    services: Services,
    client: TestClient,  # noqa: F811
    tokens: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    assert len(AGENCY) == 128
    body = {"agency": AGENCY, "name": "值班", "phone": "13800000000"}
    response = await client.put("/api/v1/agency-contacts", json=body, headers=tokens["bureau"])
    assert response.status == 200, await response.text()
    assert (await response.json())["agency"] == AGENCY
    async with services.sessions() as session:
        (line,) = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.set"))
        ).scalars()
    assert line.entity_id == AGENCY[:63] + "…"
    assert line.data["entity_id"] == AGENCY
