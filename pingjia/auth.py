"""API tokens: created by `pingjia token create`, stored as SHA-256 hashes, carrying a role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.models import ApiToken
from rating.access.tokens import TokenRepository
from rating.cases.repository import Repository
from rating.errors import InvalidInput

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


class TokenService:
    """Create and check bearer tokens."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(
        self, role: str, name: str, now: datetime, *, agency: str | None = None
    ) -> str:
        """Store a new token's hash and return the token itself (shown once)."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
        if not name.strip():
            raise InvalidInput("a token needs a name", code="invalid_name")
        agency = agency.strip() if agency else None
        if agency and role != "agency":
            raise InvalidInput(
                f"--agency scopes agency tokens only, not role {role}", code="agency_not_allowed"
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
            repo.audit(now, "cli", "token.created", "token", name.strip(), role=role, agency=agency)
            await session.commit()
        return token

    async def authenticate(self, token: str) -> Principal | None:
        """The principal behind a token, or None when it is unknown or revoked."""
        async with self.sessions() as session:
            found = await TokenRepository(session).token_by_hash(hash_token(token))
        return Principal(found.name, found.role, found.agency) if found else None
