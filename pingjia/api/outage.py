"""A database or Redis that is down answers 503 with Retry-After, never a 500.

The request wrote nothing (its transaction never committed), so the client may simply send it
again; API clients get the JSON error, the citizen's page and the console a short Chinese page.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import exc as sa

from pingjia.api.errors import error_response
from rating.state import StateUnavailable

log = structlog.get_logger("pingjia.http")
RETRY_AFTER = 5  # seconds: a restarted PostgreSQL or Redis is back in about that time
PAGE = (
    '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>服务暂时不可用</title><p>系统正在恢复，请稍后再试。</p></html>"
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a backing service is unreachable (not that the request was bad)."""
    if isinstance(exc, StateUnavailable | sa.TimeoutError | ConnectionError | asyncio.TimeoutError):
        return True
    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa.InterfaceError):
            return True
        if isinstance(exc, sa.OperationalError):
            text = str(exc.orig).lower()
            # SQLite's "database is locked" / "unable to open"; PostgreSQL's shutdown codes.
            return any(w in text for w in ("locked", "unable to open", "shutdown", "connect"))
        name = type(exc.orig).__name__
        return "Connection" in name or "CannotConnect" in name or "Shutdown" in name
    if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
        return True  # a refused or reset socket (asyncpg raises these unwrapped)
    return False


@web.middleware
async def outage_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning(
            "backing service unavailable",
            method=request.method,
            path=request.path,
            error=type(exc).__name__,
        )
        headers = {"Retry-After": str(RETRY_AFTER)}
        if request.path.startswith(("/api/", "/sms/")) or request.path == "/healthz":
            return error_response(
                503,
                "unavailable",
                "the database or the shared state is unavailable; nothing was written, "
                f"retry in {RETRY_AFTER} s",
                headers=headers,
            )
        return web.Response(text=PAGE, status=503, content_type="text/html", headers=headers)
