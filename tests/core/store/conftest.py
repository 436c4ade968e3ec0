"""The store contract suite runs once per backend: SQLite, and PostgreSQL (see `tests.postgres`).

Each test gets a fresh, empty database: a new SQLite file, or a new schema in the session's
PostgreSQL database (`postgres_url`, from the top-level conftest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.store import open_store
from core.store.base import Store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of the backend under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'seedbot.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at a fresh database of the backend under test."""
    return load_settings(_env_file=None, DATABASE_URL=database_url)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    opened = await open_store(settings)
    try:
        yield opened
    finally:
        await opened.close()
