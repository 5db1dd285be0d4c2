"""The Aliyun SDK's HTTP calls over one aiohttp session per provider, instead of one per call.

`alibabacloud-tea-openapi` sends every request through `DaraCore.async_do_action`, which opens
a new `aiohttp.ClientSession` (a new connector, TLS context and connection) for each call and
closes it after: no connection is reused, and a send costs a TCP (and TLS) handshake plus the
session's set-up in CPU (bench/README.md, Aliyun: 471/s at 50 ms per request that way). The
SDK offers no hook for its HTTP client, so `install()` wraps that one static method: while
`using(session)` is active in the current task (a ContextVar, so concurrent sends and other
users of the SDK never see each other's session) the request goes out on `session`; anywhere
else the SDK's own function runs unchanged. The SDK still builds, signs and reads every
request; only the socket under it changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aiohttp
from darabonba.core import (  # type: ignore[import-untyped]
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DaraCore,
)
from darabonba.exceptions import RetryError  # type: ignore[import-untyped]
from darabonba.response import DaraResponse  # type: ignore[import-untyped]

_session: ContextVar[aiohttp.ClientSession | None] = ContextVar("aliyun_session", default=None)
_installed: list[Callable[..., Awaitable[Any]]] = []  # the SDK's own function, once wrapped


def install() -> None:
    """Wrap `DaraCore.async_do_action` (idempotent)."""
    if _installed:
        return
    original = DaraCore.async_do_action
    _installed.append(original)

    async def do_action(request: Any, runtime_option: dict[str, Any] | None = None) -> Any:
        session = _session.get()
        if session is None:
            return await original(request, runtime_option)
        return await _send(session, request, runtime_option or {})

    DaraCore.async_do_action = staticmethod(do_action)


@contextmanager
def using(session: aiohttp.ClientSession) -> Iterator[None]:
    """The SDK's calls in this context go out on `session`."""
    token = _session.set(session)
    try:
        yield
    finally:
        _session.reset(token)


async def _send(session: aiohttp.ClientSession, request: Any, runtime: dict[str, Any]) -> Any:
    """What `DaraCore.async_do_action` does, on `session`: the same URL, headers, body and
    timeouts (the SDK's milliseconds), the same DaraResponse, RetryError for a network fault."""
    url = DaraCore.compose_url(request)
    connect = int(runtime.get("connectTimeout") or DEFAULT_CONNECT_TIMEOUT) / 1000
    read = int(runtime.get("readTimeout") or DEFAULT_READ_TIMEOUT) / 1000
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is not None and not isinstance(body, bytes):
        body = b"".join(body)  # a stream of chunks
    timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read)
    try:
        async with session.request(
            request.method, url, data=body or b"", headers=request.headers, timeout=timeout
        ) as response:
            answer = DaraResponse()
            answer.body = await response.read()
            answer.headers = {k.lower(): v for k, v in response.headers.items()}
            answer.status_code = response.status
            answer.status_message = response.reason
            answer.response = response
            return answer
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise RetryError(f"{type(exc).__name__}: {exc}") from None
