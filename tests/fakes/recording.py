"""A real HTTP server on 127.0.0.1 that records requests and answers as it is told.

Control routes, as our fakes of external APIs all have them (STYLE.md):
- `GET /_requests` → every request received, oldest first;
- `POST /_reset` → forget requests and scripted answers;
- `POST /_set_response` `{"path", "status"?, "body"?, "times"?, "delay"?}` → the next `times`
  requests to `path` (default: forever) get this status and body, after `delay` seconds
  (a stall longer than the client's timeout is a hang).
The same controls exist as methods for tests in the same process.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


async def serve_local(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free port of 127.0.0.1; its runner (to clean up) and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Scripted:
    status: int
    body: Any
    times: int | None  # None: every time
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    answered: int = 0


@dataclass
class RecordingServer:
    """Subclasses add their routes in `routes` and answer through `answer`."""

    latency: float = 0.0  # every answer waits this long (a store that answers in 50 ms)
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, list[Scripted]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/_requests", self._requests)
        app.router.add_post("/_reset", self._reset)
        app.router.add_post("/_set_response", self._set_response)
        self.routes(app)
        self._runner, self.url = await serve_local(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def script(
        self, path: str, status: int, body: Any = None, times: int | None = 1, delay: float = 0.0
    ) -> None:
        self.scripts.setdefault(path, []).append(Scripted(status, body, times, delay))

    def reset(self) -> None:
        self.requests.clear()
        self.scripts.clear()

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def record(self, request: web.Request) -> tuple[Recorded, web.Response | None]:
        """Record the request; return the scripted answer if one applies."""
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        entry = Recorded(request.method, request.path, dict(request.headers), payload)
        self.requests.append(entry)
        queue = self.scripts.get(request.path, [])
        if self.latency:
            await asyncio.sleep(self.latency)
        if not queue:
            return entry, None
        scripted = queue[0]
        if scripted.times is not None:
            scripted.times -= 1
            if scripted.times <= 0:
                queue.pop(0)
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        entry.answered = scripted.status
        return entry, web.json_response(
            scripted.body or {"error": "scripted"}, status=scripted.status
        )

    async def _requests(self, _request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "method": r.method,
                    "path": r.path,
                    "headers": r.headers,
                    "json": r.json,
                    "status": r.answered,
                }
                for r in self.requests
            ]
        )

    async def _reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _set_response(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.script(
            spec["path"],
            int(spec.get("status", 200)),
            spec.get("body"),
            spec.get("times"),
            float(spec.get("delay", 0.0)),
        )
        return web.json_response({"ok": True})
