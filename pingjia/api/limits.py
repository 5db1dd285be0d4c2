"""Brute-force limits on the console sign-in, per client (behind a trusted proxy too).

Only failed sign-ins count: an office behind one address signs in many times a morning, a
guesser fails. After MISSES_PER_WINDOW failures from one client, the client is blocked until
the window ends, and even a right token is answered 429 meanwhile (or a guesser could tell a
hit from a miss). The counters live in the shared state (Redis when configured, in-process
otherwise); when it is down the sign-in still works (the 256-bit tokens still guard).
"""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from rating.state import SharedState, StateError

log = structlog.get_logger("pingjia.http")
SIGNIN_PATH = "/console/signin"
MISSES_PER_WINDOW = 10
WINDOW = 600.0
PAGE = (
    '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>请稍后再试</title><p>登录失败次数过多，请过几分钟再试。</p></html>"
)


def signin_limit(
    state: SharedState, misses: int = MISSES_PER_WINDOW, window: float = WINDOW
) -> Middleware:
    """Count failed POSTs to the sign-in (401) per client; block the client past `misses`."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != SIGNIN_PATH:
            return await handler(request)
        client = request.remote or "unknown"
        block = f"signin-block:{client}"
        try:
            # A claim succeeds only when no block is in place: a read every state backend
            # offers; the probe is released at once, so it leaves nothing behind.
            blocked = not await state.claim(block, 1.0)
            if not blocked:
                await state.release(block)
        except StateError:
            blocked = False
        if blocked:
            return _too_many(window)
        response = await handler(request)
        if response.status == 401:
            try:
                hit = await state.hit(f"signin-miss:{client}", misses, window)
                if hit.count >= misses:  # the last miss allowed: block from the next attempt
                    await state.claim(block, hit.retry_after or window)
                    log.warning("console sign-in guessing blocked", client=client)
            except StateError:
                log.warning("sign-in limit skipped: shared state unavailable")
        return response

    return limit


def _too_many(window: float) -> web.Response:
    return web.Response(
        text=PAGE,
        status=429,
        content_type="text/html",
        headers={"Retry-After": str(int(window))},
    )
