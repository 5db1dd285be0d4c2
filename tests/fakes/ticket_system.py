"""A fake 12345 ticket system: POST /tickets answers the ticket's id in that system."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import RecordingServer


@dataclass
class FakeTicketSystem(RecordingServer):
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)  # our ticket_no → body

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/tickets", self._create)

    def reset(self) -> None:
        super().reset()
        self.tickets.clear()

    async def _create(self, request: web.Request) -> web.Response:
        entry, scripted = await self.record(request)
        if scripted is not None:
            return scripted
        body = entry.json if isinstance(entry.json, dict) else {}
        ticket_no = str(body.get("ticket_no", ""))
        if not ticket_no:
            entry.answered = 422
            return web.json_response({"error": "ticket_no required"}, status=422)
        self.tickets.setdefault(ticket_no, body)
        entry.answered = 200
        ref = f"GD-{list(self.tickets).index(ticket_no) + 1:06d}"
        return web.json_response({"id": ref})
