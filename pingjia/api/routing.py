"""Declared routes: one declaration authenticates, validates and documents (OpenAPI) a route."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode

from pingjia.api.errors import ApiError
from pingjia.api.schemas import ErrorOut
from pingjia.auth import ROLES, Principal
from rating.access.idempotency import MAX_KEY_CHARS, IdempotencyKeys
from rating.text import check_json, check_texts
from rating.words import input_problem, role_name

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
MAX_PATH_ID = 999_999_999  # fits every integer column (PostgreSQL's int4 too)
# Text a database can store: no NUL. (Nor a lone surrogate, which JSON can only carry as a
# \ud800 escape: refused too, said in the document's description; a pattern cannot say it,
# since validators that follow ECMA-262 over Unicode scalar values cannot name one.)
STORABLE = "^[^\\u0000]*$"
NON_BLANK = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"


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
    """Pydantic's errors as people and programs read them: pydantic's `type` and `loc` for
    programs, a Chinese `message` from rating/words.py for people; never the input values
    (they may hold a phone number), never pydantic's English."""
    details = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        problem = input_problem(err["type"], err.get("ctx"))
        details.append(
            {
                "type": err["type"],
                "loc": list(err["loc"]),
                "field": field,
                "message": f"{field}：{problem}" if field else problem,
            }
        )
    return details


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "empty_body", "请求须带 JSON 正文。")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "正文须为 UTF-8 编码的 JSON。") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"正文不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列有误。",
            [
                {
                    "type": "json_invalid",
                    "loc": [],
                    "field": "",
                    "message": input_problem("json_invalid"),
                }
            ],
        ) from None
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


# Path parameters: what each name accepts (anything else is answered 404 or 422).
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "ticket_no": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^/]+$"},
    "extension_id": {"type": "integer", "minimum": 0, "maximum": MAX_PATH_ID},
    "token_id": {"type": "integer", "minimum": 0, "maximum": MAX_PATH_ID},
    "token": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^/]+$"},
    "no": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^/]+$"},
    "action": {"type": "string", "minLength": 1, "maxLength": 32, "pattern": r"^[^/]+$"},
    "id": {"type": "integer", "minimum": 0, "maximum": MAX_PATH_ID},
    "verb": {"type": "string", "enum": ["grant", "refuse"]},
}


def path_parameters(path: str) -> list[dict[str, Any]]:
    """The `{name}` parts of a route's path, declared with what each accepts."""
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_PARAMETERS.get(name, {"type": "string", "minLength": 1}),
        }
        for name in re.findall(r"{(\w+)}", path)
    ]


def path_id(raw: str) -> int | None:
    """A numeric id from a path: ASCII digits only, small enough for any database column."""
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_PATH_ID:
        return None
    return int(raw)


def unavailable(error: dict[str, Any]) -> dict[str, Any]:
    """The 503 every route may answer when the database or the shared state is down."""
    return {
        "description": "the database or the shared state is unavailable; nothing was written",
        "headers": {
            "Retry-After": {"description": "seconds", "schema": {"type": "string"}},
        },
        "content": {"application/json": {"schema": error}},
    }


def query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's property schema as a query parameter: `X | None` is just X (absent is None)."""
    options = schema.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k not in {"anyOf", "default"}}
            return {**rest, **kept[0]}
    return {k: v for k, v in schema.items() if k != "default"}


def text_rules(schema: Any) -> Any:
    """Say in the schema what every text field must be: no NUL, no lone surrogate (no database
    stores them), and, when it must not be empty, more than blanks (blanks are stripped)."""
    if isinstance(schema, list):
        return [text_rules(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: text_rules(value) for key, value in schema.items()}
    if out.get("type") == "string" and "format" not in out and "enum" not in out:
        if "pattern" not in out:
            out["pattern"] = NON_BLANK if out.get("minLength", 0) >= 1 else STORABLE
    return out


def openapi(api: Api, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared route, from the models that validate them."""
    components: dict[str, Any] = {}

    def ref(model: type[BaseModel], mode: JsonSchemaMode = "validation") -> dict[str, str]:
        # An answer is described as it is serialized (by alias: StatsOut's `from`).
        name = model.__name__
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        components.update(schema.pop("$defs", {}))
        components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

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
                    # 1 to 100 characters without NUL; a header's value cannot start with a
                    # blank (HTTP strips it, clients refuse to send it).
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_KEY_CHARS,
                        "pattern": "^[^\\s\\u0000][^\\u0000]*$",
                    },
                }
            )
        parameters += path_parameters(route.path)
        if route.query:
            properties = route.query.model_json_schema()["properties"]
            parameters += [
                {
                    "name": info.alias or name,
                    "in": "query",
                    "required": info.is_required(),
                    "description": info.description or "",
                    "schema": text_rules(query_schema(properties[info.alias or name])),
                }
                for name, info in route.query.model_fields.items()
            ]
        if parameters:
            operation["parameters"] = parameters
        for status, model in route.responses.items():
            operation["responses"][str(status)] = {
                "description": model.__doc__ or model.__name__,
                "content": {"application/json": {"schema": ref(model, "serialization")}},
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
        operation["responses"]["503"] = unavailable(ref(ErrorOut))
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every text field refuses a NUL character and a lone surrogate "
            "(422 unstorable_text): no database stores them. Blanks around text are stripped.",
        },
        "paths": paths,
        "components": {
            "schemas": {name: text_rules(schema) for name, schema in components.items()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
