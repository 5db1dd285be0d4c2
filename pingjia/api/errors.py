"""Every error leaves as JSON `{"error": {"code", "message"}}`; nothing leaks a stack trace.

A domain refusal keeps its stable `code`; its `message` is the Chinese one of rating/words.py.
Chinese is written as it is (not `\\u` escapes), as in every successful answer.
"""

from __future__ import annotations

import json
from functools import partial
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from rating.errors import DomainError

log = structlog.get_logger("pingjia.http")
MAX_BODY = web.AppKey("max_body_bytes", int)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}
# What people read for an HTTP-level refusal with no message of its own.
HTTP_MESSAGES = {
    400: "请求有误。",
    401: "未登录或令牌无效。",
    403: "无权执行此操作。",
    409: "请求与当前状态冲突。",
    415: "不支持的内容类型，请发送 application/json。",
    422: "输入有误，请检查后重新提交。",
    429: "请求过于频繁，请稍后再试。",
}
DUMPS = partial(json.dumps, ensure_ascii=False)


class ApiError(Exception):
    """An error the API answers with; raise it from handlers and parsers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return web.json_response({"error": body}, status=status, headers=headers, dumps=DUMPS)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error; unknown failures are logged, never shown."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    except DomainError as exc:
        # The developer's note (`detail`: Asterisk's own words, a constraint) stays in the log.
        log.info("request refused", path=request.path, code=exc.code, detail=exc.detail)
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "http_error")
        # A reason of its own (an SMS provider's webhook says what it refused) is kept; the
        # standard phrase ("Bad Request") is said in Chinese.
        message = exc.reason
        if exc.reason == HTTPStatus(exc.status).phrase:
            message = HTTP_MESSAGES.get(exc.status, "请求未能完成。")
        if exc.status == 413:
            message = f"请求内容超过 {request.app[MAX_BODY]} 字节。"
        elif exc.status == 404:
            message = f"没有这个地址：{request.path}"
        elif exc.status == 405:
            message = f"{request.path} 不接受 {request.method} 请求。"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, code, message, headers=headers or None)
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        return error_response(500, "internal", "服务器内部错误，已记录日志。")
