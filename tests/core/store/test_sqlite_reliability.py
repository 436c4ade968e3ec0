"""SQLite specifics: start-up errors an operator can act on, crash safety, migrations, pragmas."""

from __future__ import annotations

import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.models import AttachmentMeta
from core.store import open_store, upgrade
from core.store.base import StoreError, UsageFilter
from core.store.migrations import LATEST_VERSION, MIGRATIONS
from tests.core.store.entries import entry
from tests.core.store.processes import check_whole_after_kill, kill_mid_reply
from tests.core.store.worker import SHARED


def sqlite_settings(path: Path) -> Settings:
    return load_settings(_env_file=None, DATABASE_URL=f"sqlite:///{path}")


async def test_a_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path / "new.db")
    assert await upgrade(settings) == LATEST_VERSION
    assert await upgrade(settings) == LATEST_VERSION  # nothing left to do, nothing breaks

    with sqlite3.connect(tmp_path / "new.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)


async def test_an_older_database_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:
        for statement in MIGRATIONS[0].statements:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO usage_ledger (request_id, at, day, platform, workspace, channel, user_id, model,"
            " effort, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, usd_nanos,"
            " cost_source, ttft_s, latency_s, outcome)"
            " VALUES ('old', 0, '2026-04-30', 'slack', 'T1', 'C1', 'U1', 'm', 'low',"
            " 10, 20, 5, 1, 3000000, 'reported', 1, 2, 'ok')"
        )

    assert await upgrade(sqlite_settings(path)) == LATEST_VERSION

    store = await open_store(sqlite_settings(path))
    try:
        await store.record_usage(entry(request_id="new", usd=Decimal("0.001")))
        everything = await store.usage_totals(UsageFilter("slack", "T1"))
        assert (everything.requests, everything.usd) == (2, Decimal("0.004"))
    finally:
        await store.close()


async def test_deleting_a_message_deletes_its_attachments(tmp_path: Path) -> None:
    # Holds only if the store's connections enforce foreign keys (SQLite's default is off).
    path = tmp_path / "fk.db"
    store = await open_store(sqlite_settings(path))
    meta = AttachmentMeta("image", "image/png", 1, "00" * 32, "a.png")
    await store.add_message(SHARED, "user", "U1", "Ann", "pic", attachments=[meta, meta])
    await store.forget_conversation(SHARED)
    await store.close()

    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone() == (0,)


async def test_a_database_from_a_newer_seedbot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this seedbot knows"):
        await open_store(sqlite_settings(path))


@pytest.mark.parametrize(
    "content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
async def test_a_corrupt_database_gives_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(content)

    with pytest.raises(StoreError) as caught:
        await open_store(sqlite_settings(path))

    message = str(caught.value)
    assert message.startswith(f"database {path} is corrupt or not a SQLite file")
    assert "restore a backup" in message and "\n" not in message


async def test_a_locked_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    await upgrade(sqlite_settings(path))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match=r"is locked by another process \(waited 0.2 s\)"):
            await open_store(sqlite_settings(path), busy_timeout_s=0.2)
    finally:
        holder.close()
    store = await open_store(sqlite_settings(path))  # usable again once the other process lets go
    await store.close()


async def test_a_missing_directory_gives_a_clear_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    with pytest.raises(StoreError, match=re.escape(f"directory {not_a_directory} does not exist")):
        await open_store(sqlite_settings(not_a_directory / "seedbot.db"))
    with pytest.raises(StoreError, match=r"directory .*missing does not exist"):
        await open_store(sqlite_settings(tmp_path / "missing" / "seedbot.db"))


async def test_an_unsupported_database_url_is_named(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, DATABASE_URL="mysql://db.internal/seedbot")
    with pytest.raises(StoreError, match="DATABASE_URL: the 'mysql' database is not supported; use sqlite"):
        await open_store(settings)


async def test_a_process_killed_mid_reply_leaves_a_consistent_database(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path / "killed.db")
    await kill_mid_reply(settings)

    with sqlite3.connect(tmp_path / "killed.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    await check_whole_after_kill(settings)
