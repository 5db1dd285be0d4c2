"""An httpx transport that sends over an aiohttp session, for SDKs built on httpx.

Why: httpcore (httpx's default transport) matches waiting requests to pooled connections with
a scan over both on every state change, so its CPU grows with the square of the requests in
flight: the Tencent SDK at 128 concurrent sends spent 8-10 ms of CPU per send in that scan
(bench/README.md, Tencent). aiohttp's pool hands a connection on in constant time. The SDK
still builds, signs and reads every request itself; only the bytes travel through aiohttp.

Transport failures come out as httpx's own exceptions (TimeoutException, NetworkError), so
code written against httpx reads them as it would from httpcore.
"""

from __future__ import annotations

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Requests over one aiohttp session holding at most `connections` connections."""

    def __init__(self, connections: int, timeout: float) -> None:
        # Opened here: build it inside the running loop. Bodies travel as they came
        # (auto_decompress off): httpx decodes them by their Content-Encoding, as it would.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
            auto_decompress=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            async with self.session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body,
                allow_redirects=False,
            ) as answer:
                content = await answer.read()
                headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers
                ]
                return httpx.Response(
                    answer.status, headers=headers, content=content, request=request
                )
        except TimeoutError as exc:
            raise httpx.TimeoutException(f"no answer in time: {exc!r}", request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(repr(exc), request=request) from exc

    async def aclose(self) -> None:
        await self.session.close()
