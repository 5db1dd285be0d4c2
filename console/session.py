"""The console's signed session cookie and its CSRF tokens.

The cookie holds no bearer token: only the SHA-256 of the token signed in with (the same hash
pingjia stores), so a revoked token ends its sessions too, and a stolen cookie is not an API
token. The signing key is derived from the app's secret with HKDF under a purpose of its own,
so it shares nothing with the phone-encryption keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SESSION_COOKIE = "pj_console"
SESSION_HOURS = 12


def derive_key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pingjia console").derive(
        secret
    )


def token_hash(token: str) -> str:
    """The hash pingjia keeps of a bearer token (pingjia/auth.py, hash_token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """One browser's session: `sid` keys its CSRF token; `token_hash` is set once signed in."""

    sid: str
    expires: datetime
    token_hash: str | None = None


class Signer:
    """HMAC-SHA256 over the session's JSON; anything unsigned, altered or expired is None."""

    def __init__(self, secret: bytes) -> None:
        self.key = derive_key(secret)

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self.key, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    def new(self, now: datetime, token_hash: str | None = None) -> Session:
        # A fresh sid at sign-in: a session fixed before it cannot be ridden after.
        return Session(secrets.token_urlsafe(16), now + timedelta(hours=SESSION_HOURS), token_hash)

    def dump(self, session: Session) -> str:
        body = json.dumps(
            {"sid": session.sid, "exp": session.expires.isoformat(), "th": session.token_hash},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac('session', body))}"

    def load(self, cookie: str | None, now: datetime) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        body_text, mac_text = cookie.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            raw = json.loads(body)
            session = Session(str(raw["sid"]), datetime.fromisoformat(raw["exp"]), raw.get("th"))
        except (ValueError, KeyError, TypeError):
            return None
        return session if now < session.expires else None

    def csrf(self, session: Session) -> str:
        """The form token of this session: a foreign page can neither read nor forge it."""
        return _b64(self._mac("csrf", session.sid.encode()))

    def csrf_ok(self, session: Session, sent: object) -> bool:
        return isinstance(sent, str) and hmac.compare_digest(sent, self.csrf(session))
