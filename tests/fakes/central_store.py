"""A fake central (provincial) rating store: POST|PUT /ratings, POST /tickets, deduped by key.

It keeps what it acknowledged by `Idempotency-Key`: a repeat is answered 200 with
`{"duplicate": true}` and stored once, as a real store does; `duplicate_status=409` makes it
answer repeats with 409 instead. Scripted failures and stalls come from RecordingServer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import RecordingServer


@dataclass
class FakeCentralStore(RecordingServer):
    duplicate_status: int = 200
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → payload

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/ratings", self._accept)
        app.router.add_put("/ratings", self._accept)  # a rating's update (a reason added later)
        app.router.add_post("/tickets", self._accept)

    def reset(self) -> None:
        super().reset()
        self.stored.clear()

    async def _accept(self, request: web.Request) -> web.Response:
        entry, scripted = await self.record(request)
        if scripted is not None:
            return scripted
        key = request.headers.get("Idempotency-Key")
        if not key:
            entry.answered = 400
            return web.json_response({"error": "Idempotency-Key required"}, status=400)
        if key in self.stored:
            entry.answered = self.duplicate_status
            return web.json_response({"duplicate": True}, status=self.duplicate_status)
        self.stored[key] = {"method": request.method, "path": request.path, "payload": entry.json}
        entry.answered = 201
        return web.json_response({"accepted": key}, status=201)
