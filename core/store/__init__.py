"""Persistent state: conversations, settings, usage ledger, budgets, processed events.

`open_store(settings)` picks the backend from DATABASE_URL; the interface is `core.store.base.Store`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.config import Settings
from core.store.base import Store, StoreError, utc_now
from core.store.postgres import PostgresStore
from core.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SqliteStore

# Platforms redeliver an unacknowledged event within minutes; a week of ids is a wide margin.
EVENT_MEMORY = timedelta(days=7)


async def open_store(settings: Settings, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Store:
    """Open the database DATABASE_URL names and bring its schema up to date, or raise StoreError.
    `busy_timeout_s` is how long SQLite waits for another process's lock."""
    path = settings.sqlite_path
    if path is not None:
        return await SqliteStore.open(path, busy_timeout_s=busy_timeout_s)
    url = settings.postgres_url
    if url is not None:
        return await PostgresStore.open(url)
    scheme = settings.database_url.get_secret_value().split("://", 1)[0]
    raise StoreError(
        f"DATABASE_URL: the {scheme!r} database is not supported;"
        " use sqlite:///path/to/file.db or postgresql://user:password@host:port/database"
    )


async def upgrade(settings: Settings) -> int:
    """Apply pending migrations (what `seedbot db upgrade` runs); returns the schema version reached."""
    store = await open_store(settings)
    try:
        return await store.schema_version()
    finally:
        await store.close()


async def apply_retention(store: Store, settings: Settings, now: datetime | None = None) -> int:
    """Purge messages older than SEEDBOT_RETENTION_DAYS (if set) and old event ids; returns messages gone."""
    now = now or utc_now()
    await store.purge_events(now - EVENT_MEMORY)
    if settings.retention_days is None:
        return 0
    return await store.purge_messages(now - timedelta(days=settings.retention_days))


__all__ = ["Store", "StoreError", "apply_retention", "open_store", "upgrade"]
