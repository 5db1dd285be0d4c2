"""GET /api/v1/tokens and DELETE /api/v1/tokens/{id}: admins list and revoke API tokens.

Creating one stays on the command line (`pingjia token create`): its secret is shown once,
to the person at the server. A revoked token is refused at once by every process, since
each request checks its token in the shared database.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from pingjia.api.errors import ApiError
from pingjia.api.routing import Api, Call, json_model, path_id
from pingjia.api.views import SERVICES
from pingjia.auth import TokenInfo

api = Api()
ADMINS = frozenset({"admin"})


class TokenOut(BaseModel):
    """A token as it may be shown: never its secret nor its hash."""

    id: int
    name: str
    role: str
    agency: str | None
    created_at: datetime
    last_used_at: datetime | None = Field(description="updated at most once a minute")
    revoked_at: datetime | None


class TokenList(BaseModel):
    items: list[TokenOut]


def token_out(token: TokenInfo) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        role=token.role,
        agency=token.agency,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@api.route(
    "GET",
    "/api/v1/tokens",
    summary="Every API token, revoked ones too, oldest first (no secrets)",
    tag="tokens",
    responses={200: TokenList},
    roles=ADMINS,
)
async def list_tokens(call: Call[BaseModel, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    tokens = await services.tokens.list_tokens()
    return json_model(TokenList(items=[token_out(t) for t in tokens]))


@api.route(
    "DELETE",
    "/api/v1/tokens/{token_id}",
    summary="Revoke a token: refused at once everywhere; revoking it again changes nothing",
    tag="tokens",
    responses={200: TokenOut},
    roles=ADMINS,
)
async def revoke_token(call: Call[BaseModel, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    raw = call.request.match_info["token_id"]
    token_id = path_id(raw)
    if token_id is None:
        raise ApiError(422, "invalid_input", f"令牌编号须为数字：{raw[:20]}")
    actor = call.principal.actor if call.principal else "anonymous"
    token = await services.tokens.revoke(token_id, actor, services.clock())
    return json_model(token_out(token))
