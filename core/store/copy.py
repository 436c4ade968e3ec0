"""`seedbot db copy`: move a SQLite database's contents into PostgreSQL, then check that all arrived.

The copy replaces the target's contents in one transaction, verified before it commits: the target
ends up holding exactly the source, however often the copy runs. Rows keep their ids, so reply chains
and attachments stay linked. The usage roll-ups are not copied; the target's trigger rebuilds them
from the ledger rows. Budget holds are not copied either: they belong to calls of the process that
used the source, which is stopped for the copy and can never settle them in the target.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from core.store.base import StoreError
from core.store.postgres import PostgresStore, describe_postgres_error
from core.store.rows import from_nanos, normal_usd
from core.store.sqlite import SqliteStore, describe_sqlite_error

BATCH_ROWS = 20_000
# (table done, rows copied so far, rows in all) after each batch.
Progress = Callable[[str, int, int], None]


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _day(text: str) -> date:
    return date.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]  # PostgreSQL's names, in SQLite's order
    # How a SQLite value becomes PostgreSQL's, for the columns whose types differ (the rest are equal).
    conversions: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    # SQLite's expression for a column that it names differently.
    sources: dict[str, str] = field(default_factory=dict)
    has_id: bool = True

    def source_columns(self) -> str:
        return ", ".join(self.sources.get(column, column) for column in self.columns)

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            self.conversions[column](value) if column in self.conversions else value
            for column, value in zip(self.columns, row, strict=True)
        )


_TIMES = {"created_at": _time, "updated_at": _time}
_MESSAGES = (
    "id", "conversation_id", "role", "author_id", "author_name", "text", "status", "platform_message_id",
    "owner", "created_at", "updated_at",
)  # fmt: skip
_LEDGER = (
    "id", "request_id", "at", "day", "platform", "workspace", "channel", "user_id", "model", "effort",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "usd", "cost_source", "ttft_s",
    "latency_s", "outcome",
)  # fmt: skip
_FEEDBACK = (
    "platform", "platform_message_id", "user_id", "workspace", "channel", "reply_id", "rating", "effort",
    "tool_calls", "usd", "at",
)  # fmt: skip

# Parents before children, so foreign keys hold at every row.
TABLES = (
    Table(
        "conversations",
        ("id", "platform", "workspace", "channel", "thread", "created_at", "updated_at"),
        _TIMES,
    ),
    Table("messages", _MESSAGES, _TIMES),
    Table(
        "attachments", ("id", "message_id", "position", "kind", "mime", "size", "sha256", "name", "source")
    ),
    Table("message_parts", ("message_id", "platform_message_id"), has_id=False),
    Table("settings", ("name", "scope", "platform", "scope_id", "value", "updated_at"), _TIMES, has_id=False),
    Table(
        "processed_events",
        ("platform", "event_id", "processed_at"),
        {"processed_at": _time},
        has_id=False,
    ),
    Table("usage_ledger", _LEDGER, {"at": _time, "day": _day, "usd": from_nanos}, {"usd": "usd_nanos"}),
    Table(
        "setting_changes",
        ("id", "at", "actor", "name", "scope", "platform", "scope_id", "old_value", "new_value"),
        {"at": _time},
    ),
    Table(
        "answer_feedback",
        _FEEDBACK,
        {"at": _time, "usd": from_nanos},
        {"usd": "usd_nanos"},
        has_id=False,
    ),
)
# Everything a copy replaces: the copied tables, the roll-ups rebuilt from the ledger, and the holds
# and leases of whatever used the target before.
_REPLACED = (
    *(table.name for table in TABLES),
    "usage_daily",
    "usage_monthly",
    "budget_reservations",
    "instance_leases",
)


@dataclass(frozen=True, slots=True)
class Tally:
    """What a database holds, to compare a copy with its source."""

    rows: dict[str, int]
    ledger_usd: Decimal
    rollup_usd: Decimal  # the monthly roll-up's total, which must equal the ledger's


class CopyError(StoreError):
    """The target is not empty, or the copy does not match its source; `str()` is one line."""


async def copy_database(
    source: Path, target_url: str, *, force: bool = False, progress: Progress | None = None
) -> Tally:
    """Copy the SQLite database at `source` into the PostgreSQL database `target_url` (both migrated
    to the latest schema first) and verify it; returns what both now hold. Raises CopyError, leaving
    the target as it was, if the target holds data and `force` is not set, or if the verification
    finds a difference."""
    if not await asyncio.to_thread(source.is_file):
        raise StoreError(f"there is no SQLite database at {source}")
    await (await SqliteStore.open(source)).close()
    await (await PostgresStore.open(target_url)).close()
    async with _sqlite(source) as reader, _postgres(target_url) as writer:
        try:
            async with writer.transaction():
                before = await _postgres_tally(writer)
                if not force and any(before.rows.values()):
                    held = ", ".join(f"{count:,} {name}" for name, count in before.rows.items() if count)
                    raise CopyError(
                        f"the target database is not empty ({held}); add --force to replace its contents"
                    )
                await writer.execute(f"TRUNCATE {', '.join(_REPLACED)} RESTART IDENTITY")
                expected = await _sqlite_tally(reader)
                for table in TABLES:
                    await _copy_table(reader, writer, table, expected.rows[table.name], progress)
                copied = await _postgres_tally(writer)
                differences = _differences(expected, copied)
                if differences:
                    raise CopyError(f"verification failed, nothing was copied: {'; '.join(differences)}")
        except asyncpg.PostgresError as error:
            raise StoreError(describe_postgres_error(target_url, error)) from None
        return copied


async def _copy_table(
    reader: aiosqlite.Connection,
    writer: asyncpg.Connection,
    table: Table,
    total: int,
    progress: Progress | None,
) -> None:
    done = 0
    async with reader.execute(f"SELECT {table.source_columns()} FROM {table.name} ORDER BY 1") as cursor:
        while batch := await cursor.fetchmany(BATCH_ROWS):
            # COPY, the fastest way in; on the ledger it fires the roll-up trigger once per batch.
            await writer.copy_records_to_table(
                table.name, records=[table.convert(row) for row in batch], columns=list(table.columns)
            )
            done += len(batch)
            if progress is not None:
                progress(table.name, done, total)
    if table.has_id:
        # Ids were given, not drawn: move the identity past them so new rows do not collide.
        await writer.execute(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
            f" COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
        )
    if progress is not None and total == 0:
        progress(table.name, 0, 0)


async def _sqlite_tally(reader: aiosqlite.Connection) -> Tally:
    rows = {}
    for table in TABLES:
        (count,) = next(iter(await reader.execute_fetchall(f"SELECT COUNT(*) FROM {table.name}")))
        rows[table.name] = count
    sums = await reader.execute_fetchall(
        "SELECT (SELECT COALESCE(SUM(usd_nanos), 0) FROM usage_ledger),"
        " (SELECT COALESCE(SUM(usd_nanos), 0) FROM usage_monthly)"
    )
    ledger, rollup = next(iter(sums))
    return Tally(rows, from_nanos(ledger), from_nanos(rollup))


async def _postgres_tally(writer: asyncpg.Connection) -> Tally:
    rows = {table.name: await writer.fetchval(f"SELECT COUNT(*) FROM {table.name}") for table in TABLES}
    ledger, rollup = await writer.fetchrow(
        "SELECT (SELECT COALESCE(SUM(usd), 0) FROM usage_ledger),"
        " (SELECT COALESCE(SUM(usd), 0) FROM usage_monthly)"
    )
    return Tally(rows, normal_usd(ledger), normal_usd(rollup))


def _differences(expected: Tally, copied: Tally) -> list[str]:
    found = [
        f"{name}: {expected.rows[name]:,} rows in the source, {copied.rows[name]:,} in the target"
        for name in expected.rows
        if expected.rows[name] != copied.rows[name]
    ]
    if expected.ledger_usd != copied.ledger_usd:
        found.append(f"ledger: ${expected.ledger_usd} in the source, ${copied.ledger_usd} in the target")
    if copied.rollup_usd != copied.ledger_usd:
        found.append(
            f"the target's usage roll-up holds ${copied.rollup_usd}, its ledger ${copied.ledger_usd}"
        )
    return found


@asynccontextmanager
async def _sqlite(path: Path) -> AsyncIterator[aiosqlite.Connection]:
    # Read-only, so the copy cannot change its source.
    try:
        connection = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise StoreError(describe_sqlite_error(path, error, 0)) from None
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def _postgres(url: str) -> AsyncIterator[asyncpg.Connection]:
    try:
        connection = await asyncpg.connect(url)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
        raise StoreError(describe_postgres_error(url, error)) from None
    try:
        yield connection
    finally:
        await connection.close()
