"""The store contract suite runs once per backend.

A backend is a way to get a fresh, empty database URL. To run the suite against another backend (say
PostgreSQL), add an entry to BACKENDS whose `fresh_url` returns a URL of an empty database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.store import open_store
from core.store.base import Store


@dataclass(frozen=True)
class Backend:
    name: str
    fresh_url: Callable[[Path], str]


BACKENDS = [Backend("sqlite", lambda tmp_path: f"sqlite:///{tmp_path / 'seedbot.db'}")]


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings pointing at a fresh database of the backend under test."""
    return load_settings(_env_file=None, DATABASE_URL=request.param.fresh_url(tmp_path))


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    opened = await open_store(settings)
    try:
        yield opened
    finally:
        await opened.close()
