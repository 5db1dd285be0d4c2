"""Fixtures for tests about what people read, not about the database: the app on SQLite only
(tests/test_console.py and tests/test_api.py run both databases). A test module takes both by
name: `database_url = sqlite_app.database_url` and `client = sqlite_app.client`."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services


@pytest.fixture
def database_url(tmp_path: object) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/pingjia.db"


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]
