"""Declared routes: one declaration authenticates, validates and documents (OpenAPI) a route."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from pingjia.api.errors import ApiError
from pingjia.api.schemas import ErrorOut
from pingjia.auth import ROLES, Principal
from rating.access.idempotency import IdempotencyKeys
from rating.text import check_json, check_texts
from rating.words import role_name

B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


@dataclass
class Call(Generic[B, Q]):
    """What a handler gets: the request, the caller, and the validated body and query."""

    request: web.Request
    principal: Principal | None
    body: B
    query: Q


Handler = Callable[[Call[Any, Any]], Awaitable[web.StreamResponse]]
Authenticator = Callable[[str], Awaitable[Principal | None]]
PRINCIPAL_KEY: web.AppKey[Authenticator] = web.AppKey("authenticate")
IDEMPOTENCY_KEYS: web.AppKey[IdempotencyKeys] = web.AppKey("idempotency_keys", IdempotencyKeys)
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel]] = field(default_factory=dict)
    roles: frozenset[str] | None = frozenset(ROLES)
    media: dict[int, str] = field(default_factory=dict)  # status -> a file's media type
    idempotent: bool = False  # takes an Idempotency-Key header: one key, one request


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the input values (they may hold a phone number)."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False)
    ]


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "empty_body", "请求须带 JSON 正文。")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"正文不是有效的 JSON：{exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "正文须为 JSON 对象。")
    check_json(data)  # JSON's \u0000 and \ud800 escapes decode to text no database stores
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_input", "正文的字段不符合接口说明，见 details。", validation_details(exc)
        ) from None


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    data: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise ApiError(422, "invalid_input", f"查询参数 {key} 出现了两次。")
        data[key] = values[0]
    check_texts(data.items())
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_input", "查询参数不符合接口说明，见 details。", validation_details(exc)
        ) from None


async def _authenticate(request: web.Request, roles: frozenset[str]) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "请在请求头中发送 Authorization: Bearer 令牌（令牌由 pingjia token create 创建）。",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await request.app[PRINCIPAL_KEY](token.strip())
    if principal is None:
        raise ApiError(
            401, "unauthorized", "令牌无效或已吊销。", headers={"WWW-Authenticate": "Bearer"}
        )
    if principal.role not in roles:
        raise ApiError(
            403,
            "forbidden",
            f"{role_name(principal.role)}不能执行此操作；可以执行的是："
            f"{'、'.join(role_name(r) for r in sorted(roles))}。",
        )
    return principal


class Api:
    """A list of routes to install on an app and to describe in OpenAPI."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        responses: dict[int, type[BaseModel]] | None = None,
        roles: frozenset[str] | None = frozenset(ROLES),
        media: dict[int, str] | None = None,
        idempotent: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method,
                    path,
                    handler,
                    summary,
                    tag,
                    body,
                    query,
                    responses or {},
                    roles,
                    media or {},
                    idempotent,
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, _endpoint(route))


def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        principal = await _authenticate(request, route.roles) if route.roles is not None else None
        check_texts(request.match_info.items())  # a ticket number in the path, say
        body = await _parse_body(request, route.body) if route.body else None
        query = _parse_query(request, route.query) if route.query else None
        if route.query is None and request.query and route.path.startswith("/api/"):
            raise ApiError(422, "invalid_input", "此接口不接受查询参数。")
        if route.idempotent and (key := request.headers.get(IDEMPOTENCY_HEADER)) is not None:
            check_texts([(IDEMPOTENCY_HEADER, key)])
            await request.app[IDEMPOTENCY_KEYS].claim(
                key,
                f"{request.method} {request.path}",
                body.model_dump(mode="json") if body is not None else {},
                principal.actor if principal else "anonymous",
            )
        return await route.handler(Call(request, principal, body, query))

    endpoint.__name__ = route.handler.__name__
    return endpoint


def json_model(model: BaseModel, status: int = 200) -> web.Response:
    """Serialize a response model."""
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def openapi(api: Api, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared route, from the models that validate them."""
    components: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, Any] = {}
    for route in api.routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": route.handler.__name__,
            "responses": {},
        }
        if route.roles is not None:
            operation["security"] = [{"bearer": []}]
            operation["description"] = "roles: " + ", ".join(sorted(route.roles))
        if route.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route.body)}},
            }
        parameters: list[dict[str, Any]] = []
        if route.idempotent:
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "1 to 100 characters naming this one request: a retry with "
                    "the same key and body answers as the first; the same key with another "
                    "body is refused (422 idempotency_key_reused)",
                    "schema": {"type": "string", "maxLength": 100},
                }
            )
        if route.query:
            parameters += [
                {
                    "name": info.alias or name,
                    "in": "query",
                    "required": info.is_required(),
                    "description": info.description or "",
                    "schema": {"type": "string"},
                }
                for name, info in route.query.model_fields.items()
            ]
        if parameters:
            operation["parameters"] = parameters
        for status, model in route.responses.items():
            operation["responses"][str(status)] = {
                "description": model.__doc__ or model.__name__,
                "content": {"application/json": {"schema": ref(model)}},
            }
        for status, media_type in route.media.items():
            operation["responses"][str(status)] = {
                "description": f"the file ({media_type})",
                "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            }
        operation["responses"]["4XX"] = {
            "description": "bad input, missing token, forbidden, not found, conflict",
            "content": {"application/json": {"schema": ref(ErrorOut)}},
        }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
