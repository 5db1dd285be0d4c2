"""HTTP client of the central (provincial) rating store: POST /ratings and /tickets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

# Outbox topics this client carries, and the store's method and path for each. A reason added
# after the rating goes as a PUT of the same record (same 办件编号 and 评价次数, `update: true`):
# a store that only knows POST answers 405, so the update is retried and dead-lettered loudly
# instead of being taken for a duplicate (409) and dropped.
ROUTES = {
    "central.rating": ("POST", "/ratings"),
    "central.rating.update": ("PUT", "/ratings"),
    "central.ticket": ("POST", "/tickets"),
}


class PostFailed(Exception):
    """The store did not acknowledge; the message says why, for the outbox's last_error."""


@dataclass
class HttpPoster:
    """POSTs JSON with an `Idempotency-Key`; any 2xx acknowledges, 409 means "already have it".

    The session is opened lazily inside the running loop and closed by `close()`.
    """

    base_url: str
    timeout: float = 10.0
    _session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session

    async def post(
        self, path: str, key: str, payload: dict[str, Any], method: str = "POST"
    ) -> dict[str, Any]:
        """Send and return the JSON answer (or {}); raise PostFailed when not acknowledged."""
        url = self.base_url.rstrip("/") + path
        body = json.dumps(payload, ensure_ascii=False)
        headers = {"Idempotency-Key": key, "Content-Type": "application/json; charset=utf-8"}
        try:
            async with self.session().request(
                method, url, data=body.encode(), headers=headers
            ) as response:
                text = await response.text()
                if 200 <= response.status < 300 or response.status == 409:
                    try:
                        answer = json.loads(text) if text.strip() else {}
                    except json.JSONDecodeError:
                        answer = {}
                    return answer if isinstance(answer, dict) else {}
                raise PostFailed(f"{method} {url} answered {response.status}: {text[:200]}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PostFailed(f"{url}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class CentralStore:
    """Posts outbox items of the central-store topics."""

    topics = tuple(ROUTES)

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.http = HttpPoster(base_url, timeout)

    async def send(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        method, path = ROUTES[topic]
        await self.http.post(path, key, payload, method)

    async def close(self) -> None:
        await self.http.close()
