"""Phone numbers: normalized, encrypted at rest, hashed for lookup, masked in logs and answers.

Bad numbers tried: too short, letters, a mainland mobile with a wrong prefix digit, an empty
string, a plus sign alone.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import structlog
from sqlalchemy import text

from pingjia import logs
from pingjia.app import build_app
from pingjia.composition import Services
from rating.errors import InvalidInput
from rating.privacy import PhoneVault, load_or_create_secret, mask_phone, mask_text, normalize_phone

PHONE = "13912348765"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13912348765", "13912348765"),
        ("+86 139 1234 8765", "13912348765"),
        ("0086-139-1234-8765", "13912348765"),
        ("８６１３９１２３４８７６５", "13912348765"),
        ("0750-5565821", "07505565821"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "phone", "12912348765", "", "+"])
def test_bad_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw)
    assert caught.value.code == "invalid_phone"


def test_mask() -> None:
    assert mask_phone("13912348765") == "139****8765"
    assert mask_phone("+442079460958") == "+442****0958"
    assert (
        mask_text("call 13912348765 or +8613912348765 now") == "call 139****8765 or 139****8765 now"
    )
    assert mask_text("case C2026112000001 id 1234567") == "case C2026112000001 id 1234567"


def test_vault_round_trip_and_keyed_hash() -> None:
    vault = PhoneVault(b"one key")
    token = vault.encrypt(PHONE)
    assert PHONE not in token
    assert vault.decrypt(token) == PHONE
    assert vault.lookup_hash(PHONE) == PhoneVault(b"one key").lookup_hash(PHONE)
    assert vault.lookup_hash(PHONE) != PhoneVault(b"another key").lookup_hash(PHONE)
    with pytest.raises(ValueError, match="PINGJIA_SECRET_KEY"):
        PhoneVault(b"another key").decrypt(token)


def test_secret_is_generated_once(tmp_path: Any) -> None:
    first, generated = load_or_create_secret(None, tmp_path / "data")
    again, generated_again = load_or_create_secret(None, tmp_path / "data")
    assert generated and not generated_again and first == again
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret("given", tmp_path) == (b"given", False)


@pytest.mark.article("sanmenxia", 10)
@pytest.mark.article("taishan", 16)
async def test_no_clear_number_in_database_or_debug_logs(
    aiohttp_client: Any, services: Services
) -> None:
    stream = io.StringIO()
    logs.configure("DEBUG", "console", stream=stream)
    try:
        client = await aiohttp_client(build_app(services))
        token = await services.tokens.create("agent", "privacy-test", services.clock())
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "case_no": "P1",
            "kind": "consultation",
            "phone": PHONE,
            "completed_at": "2026-11-20T09:00:00+08:00",
        }
        assert (await client.post("/api/v1/services", json=body, headers=headers)).status == 201
        rating = {"case_no": "P1", "level": 5, "reason": f"回电 {PHONE} 没人接"}
        assert (await client.post("/api/v1/ratings", json=rating, headers=headers)).status == 201
        bad = {**body, "case_no": "P2", "phone": PHONE + "9"}
        assert (await client.post("/api/v1/services", json=bad, headers=headers)).status == 422
        listed = await client.get("/api/v1/evaluations", headers=headers)
        assert PHONE not in await listed.text()
        structlog.get_logger("test").debug("free text with a number", note=f"tel {PHONE}")
        logging.getLogger("aiohttp.test").info("stdlib line with %s", PHONE)
    finally:
        logs.configure("WARNING", "console", stream=io.StringIO())
    output = stream.getvalue()
    assert "evaluation opened" in output and "139****8765" in output
    assert PHONE not in output

    # Every text column of every table, read raw: the number is nowhere in clear.
    async with services.engine.connect() as conn:
        for table in ("cases", "evaluations", "ratings", "tickets", "outbox", "audit_log"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            assert PHONE not in repr(rows), table
        stored = (await conn.execute(text("SELECT phone_enc, phone_hash FROM cases"))).one()
    assert services.vault.decrypt(stored.phone_enc) == PHONE
    assert stored.phone_hash == services.vault.lookup_hash(PHONE)
