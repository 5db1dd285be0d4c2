"""A fake Twilio REST API: a real aiohttp server on 127.0.0.1 that records what it receives.

Tell it to fail (`fail_next`), to stall (`latency`), or read `requests`; over HTTP the same
through `/_requests`, `/_reset` and `/_set_response`, as wazo-calld's fakes do. `sign` computes
the X-Twilio-Signature Twilio puts on its webhooks, so tests can play Twilio calling us.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.recording import serve_local


@dataclass
class Received:
    account_sid: str
    form: dict[str, str]
    username: str
    password: str


@dataclass
class FakeTwilio:
    """Messages.json on a random local port; `url` is its base, for PINGJIA_TWILIO_API_URL."""

    latency: float = 0.0
    requests: list[Received] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def fail_next(self, count: int = 1, status: int = 500, code: int = 20500) -> None:
        """Answer the next `count` sends with `status` and a Twilio error body."""
        body = {"code": code, "message": f"fake failure {status}", "status": status}
        self.failures.extend([(status, body)] * count)

    def reset(self) -> None:
        self.requests.clear()
        self.failures.clear()
        self.latency = 0.0

    async def _messages(self, request: web.Request) -> web.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        form = {k: str(v) for k, v in (await request.post()).items()}
        user, _, password = (
            base64.b64decode(request.headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"")
            .decode()
            .partition(":")
        )
        self.requests.append(Received(request.match_info["sid"], form, user, password))
        if self.failures:
            status, body = self.failures.pop(0)
            return web.json_response(body, status=status)
        sid = f"SM{uuid.uuid4().hex}"
        return web.json_response(
            {
                "sid": sid,
                "account_sid": request.match_info["sid"],
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": "Fri, 20 Nov 2026 10:00:00 +0000",
                "uri": f"/2010-04-01/Accounts/{request.match_info['sid']}/Messages/{sid}.json",
            },
            status=201,
        )

    async def _requests(self, _request: web.Request) -> web.Response:
        return web.json_response([r.form for r in self.requests])

    async def _reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    async def _set_response(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "latency" in body:
            self.latency = float(body["latency"])
        if "fail" in body:
            self.fail_next(int(body["fail"]), int(body.get("status", 500)))
        return web.json_response({})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._messages)
        app.router.add_get("/_requests", self._requests)
        app.router.add_post("/_reset", self._reset)
        app.router.add_post("/_set_response", self._set_response)
        self._runner, self.url = await serve_local(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio sends with a webhook to `url` carrying `params`."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


async def _serve_forever(latency: float) -> None:
    fake = FakeTwilio(latency=latency)
    print(await fake.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # A fake in its own process (bench/sms_bench.py): prints its URL, serves until killed.
    import sys

    asyncio.run(_serve_forever(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
