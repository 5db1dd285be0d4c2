"""API tokens: created by `pingjia token create`, stored as SHA-256 hashes, carrying a role."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import AuditLog
from rating.access.models import ApiToken
from rating.access.tokens import TOUCH_EVERY, TokenRepository
from rating.cases.repository import Repository
from rating.errors import Conflict, InvalidInput, NotFound

ROLES = ("agent", "agency", "bureau", "admin")
TOKEN_PREFIX = "pj_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and role."""

    name: str
    role: str
    agency: str | None = None  # role agency: the only agency whose tickets it sees

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a plain hash is as strong as a slow one here.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never its secret nor its hash."""

    id: int
    name: str
    role: str
    agency: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenInfo:
        return cls(
            row.id,
            row.name,
            row.role,
            row.agency,
            row.created_at,
            row.last_used_at,
            row.revoked_at,
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenService:
    """Create, list, revoke and check bearer tokens.

    Every check reads the database (no cache in the process), so a revoked token is refused
    at once by every process that shares the database.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.sessions = sessions
        self.clock = clock

    async def issue(
        self, role: str, name: str, now: datetime, *, agency: str | None = None, force: bool = False
    ) -> str:
        """`create` for people (the CLI): an agency that no case names is refused unless
        `force`, since a typo would make a token that never sees a ticket."""
        if role == "agency" and agency and agency.strip() and not force:
            async with self.sessions() as session:
                known = await Repository(session).agency_named(agency.strip())
            if not known:
                raise InvalidInput(
                    f"no case names the agency {agency.strip()!r}; check the spelling against "
                    "the case system's, or pass --force to create the token anyway",
                    code="unknown_agency",
                    params={"agency": agency.strip()},
                )
        return await self.create(role, name, now, agency=agency)

    async def create(
        self, role: str, name: str, now: datetime, *, agency: str | None = None
    ) -> str:
        """Store a new token's hash and return the token itself (shown once)."""
        if role not in ROLES:
            raise InvalidInput(
                f"role must be one of {', '.join(ROLES)}",
                code="invalid_role",
                params={"allowed": ROLES},
            )
        if not name.strip():
            raise InvalidInput("a token needs a name", code="invalid_name")
        agency = agency.strip() if agency else None
        if agency and role != "agency":
            raise InvalidInput(
                f"--agency scopes agency tokens only, not role {role}",
                code="agency_not_allowed",
                params={"role": role},
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.sessions() as session:
            repo = Repository(session)
            repo.add(
                ApiToken(
                    name=name.strip(),
                    role=role,
                    token_hash=hash_token(token),
                    created_at=now,
                    agency=agency,
                )
            )
            AuditLog(session).record(
                now, "cli", "token.created", "token", name.strip(), role=role, agency=agency
            )
            await session.commit()
        return token

    async def authenticate(self, token: str) -> Principal | None:
        """The principal behind a token, or None when it is unknown or revoked; records the
        use (at most once a minute per token)."""
        async with self.sessions() as session:
            repo = TokenRepository(session)
            found = await repo.token_by_hash(hash_token(token))
            if found is None:
                return None
            now = self.clock()
            if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
                await repo.touch(found.id, now)
                await session.commit()
        return Principal(found.name, found.role, found.agency)

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones too, oldest first."""
        async with self.sessions() as session:
            return [TokenInfo.of(t) for t in await TokenRepository(session).all_tokens()]

    async def revoke(self, ref: str | int, actor: str, now: datetime) -> TokenInfo:
        """Revoke a token by id, or by name when one live token has it; revoking a revoked
        token again changes nothing and answers it as it is."""
        async with self.sessions() as session:
            repo = TokenRepository(session)
            found = await self._find(repo, ref)
            if await repo.revoke(found.id, now):
                AuditLog(session).record(
                    now, actor, "token.revoked", "token", found.name, token_id=found.id
                )
                await session.commit()
                await session.refresh(found)
            return TokenInfo.of(found)

    async def _find(self, repo: TokenRepository, ref: str | int) -> ApiToken:
        if isinstance(ref, int) or ref.isdigit():
            by_id = await repo.token_by_id(int(ref))
            if by_id is None:
                raise NotFound(
                    f"no token with id {ref}", code="token_not_found", params={"ref": ref}
                )
            return by_id
        named = await repo.tokens_named(ref.strip())
        live = [t for t in named if t.revoked_at is None]
        if len(live) > 1:
            ids = ", ".join(str(t.id) for t in live)
            raise Conflict(
                f"{len(live)} live tokens are named {ref!r} (ids {ids}); revoke one by its id",
                code="ambiguous_token",
                params={"count": len(live), "ref": ref, "ids": ids},
            )
        if not named:
            raise NotFound(f"no token named {ref!r}", code="token_not_found", params={"ref": ref})
        return (live or named)[-1]
