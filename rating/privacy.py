"""Phone numbers: normalized, encrypted at rest, found by a keyed hash, masked for people."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rating.errors import InvalidInput

_SEPARATORS = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_CN_LANDLINE = re.compile(r"0[1-9]\d{8,10}")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
# What a phone or ID number looks like inside free text (reasons, SMS bodies, log lines):
# 身份证 numbers; mainland mobiles with or without +86/0086/86, whole or split by blanks or
# dashes; landlines with their area code (0750-1234567, (0750)1234567, +86 750 1234567);
# other E.164 numbers; and a bare local number (7 or 8 digits) right after a word that says
# it is one (电话 1234567). A digit or `*` just before, or a digit just after, means the run
# is part of something longer (a case number, a number already masked): left alone.
_SEP = r"[\s\-]?"
PHONE_IN_TEXT = re.compile(
    r"(?<![\d*])(?:"
    r"(?P<id>[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx])"
    rf"|(?P<mobile>(?:(?:\+|00)?86{_SEP})?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}})"
    rf"|(?:\+|00)86{_SEP}(?P<area86>[1-9]\d{{1,2}}){_SEP}(?P<local86>\d{{7,8}})"
    rf"|\(?(?P<area>0[1-9]\d{{1,2}})\)?{_SEP}(?P<local>\d{{7,8}})"
    r"|(?P<e164>\+[1-9]\d{7,14})"
    r")(?!\d)"
    r"|(?P<said>(?:电话|座机|手机|号码|联系方式|tel|phone)\D{0,3}?)(?P<bare>\d{7,8})(?!\d)",
    re.IGNORECASE,
)


def normalize_phone(raw: str) -> str:
    """Return the canonical form: 11-digit mainland mobile, 0-prefixed landline, or +E.164."""
    text = _SEPARATORS.sub("", raw.strip()).translate(_FULLWIDTH)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if _CN_MOBILE.fullmatch(text) or _CN_LANDLINE.fullmatch(text):
        return text
    if text.startswith("00") and _E164.fullmatch("+" + text[2:]):
        return "+" + text[2:]
    if _E164.fullmatch(text):
        return text
    raise InvalidInput(
        "phone must be a mainland mobile (11 digits starting with 1), a landline with its "
        "area code, or an international number starting with +",
        code="invalid_phone",
    )


_FULLWIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")


def mask_phone(phone: str) -> str:
    """Mask the middle of a number: 13812345678 → 138****5678."""
    digits = phone.lstrip("+")
    if len(digits) <= 7:
        return "*" * len(phone)
    prefix = "+" if phone.startswith("+") else ""
    if digits.startswith("86") and len(digits) == 13:
        prefix, digits = "", digits[2:]  # +86 mobile: shown as the 11-digit national number
    return f"{prefix}{digits[:3]}****{digits[-4:]}"


def _mask_digits(digits: str, shown_head: int) -> str:
    """Keep the first `shown_head` and the last four digits; a star for each one hidden."""
    return digits[:shown_head] + "*" * (len(digits) - shown_head - 4) + digits[-4:]


def _mask_found(found: re.Match[str]) -> str:
    groups = found.groupdict()
    if groups["id"]:
        return _mask_digits(groups["id"], 3)
    if groups["mobile"]:
        return mask_phone(re.sub(r"\D", "", groups["mobile"])[-11:])
    if groups["area86"]:
        return mask_phone("0" + groups["area86"] + groups["local86"])
    if groups["area"]:
        return mask_phone(groups["area"] + groups["local"])
    if groups["e164"]:
        return mask_phone(groups["e164"])
    return groups["said"] + _mask_digits(groups["bare"], 0)


def mask_text(text: str) -> str:
    """Mask every phone number (mobile, landline, +86, E.164) and 身份证 number in free text."""
    return PHONE_IN_TEXT.sub(_mask_found, text)


@dataclass(frozen=True)
class PhoneVault:
    """Encrypts numbers (Fernet) and hashes them (HMAC-SHA256) with keys derived from one secret."""

    secret: bytes

    def _derive(self, purpose: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            self.secret
        )

    @cached_property
    def _fernet(self) -> Fernet:
        return Fernet(base64.urlsafe_b64encode(self._derive(b"pingjia phone encryption")))

    @cached_property
    def _lookup_key(self) -> bytes:
        return self._derive(b"pingjia phone lookup")

    def encrypt(self, phone: str) -> str:
        """Encrypt a normalized number for storage."""
        return self._fernet.encrypt(phone.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a stored number; a wrong key is an error an operator can act on."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored phone number does not decrypt: PINGJIA_SECRET_KEY differs from the "
                "key it was written with"
            ) from exc

    def lookup_hash(self, phone: str) -> str:
        """Keyed hash of a normalized number, to find it without decrypting."""
        return hmac.new(self._lookup_key, phone.encode(), hashlib.sha256).hexdigest()


def load_or_create_secret(configured: str | None, data_dir: Path) -> tuple[bytes, bool]:
    """Return the secret and whether it was generated now (the caller warns then)."""
    if configured:
        return configured.encode(), False
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip().encode(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value.encode(), True
