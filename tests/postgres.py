"""PostgreSQL for tests: a database for the session, and a fresh schema in it for each test.

The database is `SEEDBOT_TEST_PG_URL` when set (CI creates one per run); otherwise the session creates
`seedbot_test_<pid>` on 127.0.0.1:5432 and drops it at the end. A schema is selected through the URL's
`search_path` query parameter (asyncpg passes unknown parameters on as server settings), so every
connection of a store, including those of worker processes given the URL, lands in it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ENV = "SEEDBOT_TEST_PG_URL"
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_schemas = itertools.count()


class PostgresUnavailable(Exception):
    """No PostgreSQL to test against; `str()` says what to do."""


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}", query=""))


def with_schema(url: str, schema: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=f"search_path={schema}"))


async def _execute(url: str, *statements: str) -> None:
    try:
        connection = await asyncpg.connect(url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable at {urlsplit(url).netloc} ({error}); the PostgreSQL store tests"
            f" need it: start PostgreSQL on 127.0.0.1:5432 or set {ENV} to an empty database's URL"
        ) from None
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def execute(url: str, *statements: str) -> None:
    """Run statements on their own connection (from synchronous fixtures, which have no event loop)."""
    asyncio.run(_execute(url, *statements))


@contextmanager
def session_database() -> Iterator[str]:
    """The URL of a database for this test session, created (and dropped after) unless given."""
    given = os.environ.get(ENV)
    if given:
        execute(given, "SELECT 1")  # unreachable: fail once, here, with the line saying what to do
        yield given
        return
    with fresh_database("seedbot_test") as url:
        yield url


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The URL of a database `<prefix>_<pid>` made on 127.0.0.1:5432, dropped afterwards."""
    name = f"{prefix}_{os.getpid()}"
    execute(SERVER_URL, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    try:
        yield with_database(SERVER_URL, name)
    finally:
        execute(SERVER_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """The URL of a new empty schema in the test database, dropped afterwards."""
    schema = f"test_{os.getpid()}_{next(_schemas)}"
    execute(database_url, f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(database_url, schema)
    finally:
        execute(database_url, f"DROP SCHEMA {schema} CASCADE")
