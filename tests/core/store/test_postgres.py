"""PostgreSQL specifics: start-up errors an operator can act on, migrations under a lock, several
instances (processes) on one database."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import pytest

from core.config import Settings, load_settings
from core.store import open_store, upgrade
from core.store.base import StoreError, UsageFilter
from core.store.migrations import LATEST_VERSION, VERSIONS
from core.store.postgres import PostgresStore, redacted_url
from tests.core.store.processes import (
    check_whole_after_kill,
    finish,
    go,
    kill_mid_reply,
    read_line,
    start_worker,
)
from tests.core.store.worker import BUDGET_TASKS, HOLD, LIMIT
from tests.postgres import with_database

PASSWORD = "hunter2-very-secret"


def pg_settings(url: str) -> Settings:
    return load_settings(_env_file=None, DATABASE_URL=url)


async def applied_migrations(url: str) -> list[tuple[int, str]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT version, description FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    return [(row[0], row[1]) for row in rows]


async def test_a_new_database_is_migrated_once_to_the_latest_version(postgres_url: str) -> None:
    assert await upgrade(pg_settings(postgres_url)) == LATEST_VERSION
    assert await upgrade(pg_settings(postgres_url)) == LATEST_VERSION  # nothing left to do

    assert await applied_migrations(postgres_url) == sorted(VERSIONS.items())


async def test_ten_instances_starting_at_once_migrate_exactly_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(open_store(pg_settings(postgres_url)) for _ in range(10)))
    try:
        assert [await store.schema_version() for store in stores] == [LATEST_VERSION] * 10
    finally:
        await asyncio.gather(*(store.close() for store in stores))

    # One row per version: had two instances both migrated, the second would have failed or doubled it.
    assert await applied_migrations(postgres_url) == sorted(VERSIONS.items())


async def test_a_database_from_a_newer_seedbot_is_refused(postgres_url: str) -> None:
    await upgrade(pg_settings(postgres_url))
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "INSERT INTO schema_migrations VALUES ($1, 'from the future', now())", LATEST_VERSION + 1
        )
    finally:
        await connection.close()

    with pytest.raises(StoreError, match="newer than this seedbot knows"):
        await open_store(pg_settings(postgres_url))


def assert_operator_line(error: pytest.ExceptionInfo[StoreError], *expected: str) -> None:
    message = str(error.value)
    assert "\n" not in message and PASSWORD not in message
    assert "DATABASE_URL" in message
    for text in expected:
        assert text in message, message


async def test_an_unreachable_server_is_named_without_the_password(unused_port: int) -> None:
    url = f"postgresql://seedbot:{PASSWORD}@127.0.0.1:{unused_port}/seedbot"
    with pytest.raises(StoreError) as caught:
        await open_store(pg_settings(url))
    assert_operator_line(caught, f"cannot reach PostgreSQL at 127.0.0.1:{unused_port}", "connection refused")


async def test_a_missing_database_is_named_without_the_password(postgres_database: str) -> None:
    url = with_database(postgres_database, "seedbot_no_such_database").replace(
        "postgres@", f"postgres:{PASSWORD}@"
    )
    with pytest.raises(StoreError) as caught:
        await open_store(pg_settings(url))
    assert_operator_line(caught, "database 'seedbot_no_such_database' does not exist", "127.0.0.1:5432")


async def test_an_unknown_user_is_named(postgres_database: str) -> None:
    url = postgres_database.replace("postgres@", f"seedbot_nobody:{PASSWORD}@")
    with pytest.raises(StoreError) as caught:
        await open_store(pg_settings(url))
    assert_operator_line(caught, "refused user 'seedbot_nobody'", "127.0.0.1:5432")


async def test_a_malformed_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(StoreError) as caught:
        await open_store(pg_settings(f"postgresql://seedbot:{PASSWORD}@127.0.0.1:port/seedbot"))
    assert_operator_line(caught, "not a valid postgresql://")


def test_the_url_is_shown_without_its_password() -> None:
    shown = redacted_url(f"postgres://bot:{PASSWORD}@db.internal:6432/seedbot?sslmode=require")
    assert shown == "postgres://bot@db.internal:6432/seedbot"
    assert PASSWORD not in repr(pg_settings(f"postgresql://bot:{PASSWORD}@db.internal/seedbot"))


async def test_two_processes_reserving_concurrently_never_overspend(postgres_url: str) -> None:
    await upgrade(pg_settings(postgres_url))
    workers = [await start_worker(postgres_url, name, "budget") for name in ("alpha", "beta")]
    for worker in workers:
        go(worker)
    granted = [int(await read_line(worker)) for worker in workers]
    assert [await finish(worker) for worker in workers] == [0, 0]

    store = await open_store(pg_settings(postgres_url))
    try:
        spent = await store.usage_totals(UsageFilter("slack", "T9", user="budget-user"))
    finally:
        await store.close()
    # Every hold was settled at its full amount: exactly as many as fit, spread over both processes.
    assert sum(granted) == spent.requests == int(LIMIT / HOLD) < 2 * BUDGET_TASKS
    assert spent.usd == HOLD * sum(granted) <= Decimal(LIMIT)


async def test_a_process_killed_mid_reply_leaves_whole_messages(postgres_url: str) -> None:
    settings = pg_settings(postgres_url)
    await kill_mid_reply(settings)
    await check_whole_after_kill(settings)


async def test_a_lease_is_renewed_while_every_pooled_connection_is_busy(postgres_url: str) -> None:
    """A burst of answers can hold the whole pool; the heartbeat must not wait for it, or peers would
    take this live instance for dead."""
    store = await PostgresStore.open(postgres_url, pool_size=1)
    blocker = await asyncpg.connect(postgres_url)
    try:
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
        # Holds the pool's only connection, waiting on the lock.
        claim = asyncio.create_task(store.claim_event("slack", "busy-event"))
        await asyncio.sleep(0.2)
        assert not claim.done()

        await asyncio.wait_for(store.heartbeat("busy-instance", 10.0), timeout=5.0)
        assert await asyncio.wait_for(store.live_instances(), timeout=5.0) == ["busy-instance"]

        await locked.rollback()
        assert await asyncio.wait_for(claim, timeout=5.0)
    finally:
        await blocker.close()
        await store.close()
