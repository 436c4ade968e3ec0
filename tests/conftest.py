"""Fixtures every suite shares: the fake model API and settings pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from tests.fakes.model_server import API_KEY, FakeModelServer
from tests.postgres import PostgresUnavailable, fresh_schema, session_database


@pytest.fixture
async def model_server() -> AsyncIterator[FakeModelServer]:
    async with FakeModelServer() as server:
        yield server


@pytest.fixture
def make_settings(tmp_path: Path, model_server: FakeModelServer) -> Callable[..., Settings]:
    """Settings for one test: the fake model API, a fresh SQLite file, no `.env`, fast timeouts."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "aiml_api_key": API_KEY,
            "aiml_base_url": model_server.base_url,
            "database_url": f"sqlite:///{tmp_path / 'seedbot.db'}",
            "max_tokens": 1024,
            "idle_timeout_s": 5.0,
            "connect_timeout_s": 2.0,
            "retry_max_wait_s": 5.0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of this session's PostgreSQL test database. Without PostgreSQL the tests that need it
    fail, with a line saying what to do, rather than skip: CI cannot pass without them."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(session_database())
        except PostgresUnavailable as error:
            unavailable = str(error)
        else:
            yield url
            return
    pytest.fail(unavailable, pytrace=False)


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """The URL of an empty PostgreSQL schema of its own for one test."""
    with fresh_schema(postgres_database) as url:
        yield url
