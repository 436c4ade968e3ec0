"""The SQLite backend of `Store`, through aiosqlite (each connection runs on its own thread).

One writer connection does every change inside `BEGIN IMMEDIATE` (taking SQLite's write lock up front,
so two processes on one file queue on the busy timeout instead of failing mid-transaction); a second
connection serves reads, which WAL lets run beside a write.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from core.models import AttachmentMeta, ConversationKey, MessageStatus, Platform, Role
from core.store.base import (
    BudgetRefusal,
    DailyUsage,
    Feedback,
    FeedbackGroupBy,
    FeedbackRate,
    LedgerEntry,
    Reservation,
    ReservationRequest,
    ScopedUsage,
    SettingChange,
    SettingScope,
    StoredMessage,
    StoredSetting,
    StoreError,
    UsageFilter,
    UsageGroup,
    UsageGroupBy,
    UsageTotals,
    check_setting_name,
    checked_setting,
    utc_now,
)
from core.store.migrations import MIGRATIONS, pending
from core.store.rows import (
    ATTACHMENT_COLUMNS,
    GROUP_COLUMNS,
    MESSAGE_COLUMNS,
    RESERVATION_TTL,
    attachment_rows,
    budget_refusal,
    feedback,
    feedback_columns,
    feedback_rate,
    feedback_rates_query,
    from_nanos,
    is_conversation,
    key_params,
    ledger_columns,
    ledger_entry,
    ledger_window,
    message_changes,
    most_specific,
    range_condition,
    rollup_for,
    stored_messages,
    to_nanos,
    usage_query,
    utc_day,
    walk_ledger,
)

log = logging.getLogger("seedbot.store")
T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 5.0


def _question_mark(_: int) -> str:
    return "?"


_IS_CONVERSATION = is_conversation(_question_mark)
_TOTAL_COLUMNS = (
    "COALESCE(SUM(requests), 0), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),"
    " COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(usd_nanos), 0)"
)
_LEDGER_COLUMNS = ledger_columns("usd_nanos")


def _epoch(at: datetime | None) -> float:
    return (at or utc_now()).timestamp()


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def describe_sqlite_error(path: Path, error: sqlite3.Error, busy_timeout_s: float) -> str:
    """One line an operator can act on, for the ways a SQLite file commonly cannot be used."""
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return (
            f"database {path} is corrupt or not a SQLite file ({text}); restore a backup or move the file "
            "away to start with an empty database"
        )
    if "locked" in text or "busy" in text:
        return (
            f"database {path} is locked by another process (waited {busy_timeout_s:g} s); "
            "stop the other seedbot using it or give each instance its own DATABASE_URL"
        )
    if "unable to open" in text:
        return f"cannot open database {path}: check that its directory exists and is writable"
    if "readonly" in text or "read-only" in text:
        return f"database {path} is read-only: give the bot write access to the file and its directory"
    return f"database {path} failed: {text}"


class SqliteStore:
    def __init__(
        self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection, busy_timeout_s: float
    ) -> None:
        self._path = path
        self._writer = writer
        self._reader = reader
        self._busy_timeout_s = busy_timeout_s
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> SqliteStore:
        """Open (creating if needed) and migrate the database, or raise StoreError saying why not."""
        if not await asyncio.to_thread(path.parent.is_dir):
            raise StoreError(f"cannot open database {path}: directory {path.parent} does not exist")
        connections: list[aiosqlite.Connection] = []
        try:
            writer = await _connect(path, busy_timeout_s)
            connections.append(writer)
            mode = await writer.execute_fetchall("PRAGMA journal_mode = WAL")
            if next(iter(mode))[0].lower() != "wal":
                raise StoreError(f"database {path} cannot use WAL journaling (is it on a network drive?)")
            await _migrate(writer, path)
            reader = await _connect(path, busy_timeout_s)
            connections.append(reader)
            return cls(path, writer, reader, busy_timeout_s)
        except sqlite3.Error as error:
            for connection in connections:
                await connection.close()
            raise StoreError(describe_sqlite_error(path, error, busy_timeout_s)) from None
        except StoreError:
            for connection in connections:
                await connection.close()
            raise

    async def close(self) -> None:
        async with self._write_lock:
            try:
                await self._writer.execute("PRAGMA optimize")
            except sqlite3.OperationalError as error:
                # Only a tune-up for the next start: another process writing now ("database is
                # locked") must not turn a clean shutdown into a crash.
                log.info("SQLite left unoptimized at close: %s", error)
            finally:
                await self._reader.close()
                await self._writer.close()

    # --- plumbing ------------------------------------------------------------------------------------

    async def _write(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        # Shielded so that a cancelled caller cannot leave a transaction half-applied or open on the
        # shared connection: the (short) transaction finishes, the caller still sees its cancellation.
        return await asyncio.shield(self._run_write(body))

    async def _run_write(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async with self._write_lock:
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
                try:
                    result = await body(self._writer)
                    await self._writer.execute("COMMIT")
                except BaseException:
                    if self._writer.in_transaction:
                        await self._writer.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise StoreError(describe_sqlite_error(self._path, error, self._busy_timeout_s)) from None
            return result

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.Error as error:
            raise StoreError(describe_sqlite_error(self._path, error, self._busy_timeout_s)) from None

    async def schema_version(self) -> int:
        rows = await self._read("PRAGMA user_version")
        return int(rows[0][0])

    # --- platform events -----------------------------------------------------------------------------

    async def claim_event(self, platform: Platform, event_id: str, *, at: datetime | None = None) -> bool:
        async def body(db: aiosqlite.Connection) -> bool:
            rows = await db.execute_fetchall(
                "INSERT INTO processed_events (platform, event_id, processed_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (platform, event_id, _epoch(at)),
            )
            return bool(list(rows))

        return await self._write(body)

    async def purge_events(self, before: datetime) -> int:
        async def body(db: aiosqlite.Connection) -> int:
            cursor = await db.execute(
                "DELETE FROM processed_events WHERE processed_at < ?", (before.timestamp(),)
            )
            return cursor.rowcount

        return await self._write(body)

    # --- conversations -------------------------------------------------------------------------------

    async def add_message(
        self,
        key: ConversationKey,
        role: Role,
        author_id: str,
        author_name: str,
        text: str,
        *,
        platform_message_id: str | None = None,
        attachments: Sequence[AttachmentMeta] = (),
        status: MessageStatus = "complete",
        at: datetime | None = None,
        owner: str | None = None,
    ) -> int:
        created = _epoch(at)

        async def body(db: aiosqlite.Connection) -> int:
            rows = await db.execute_fetchall(
                "INSERT INTO conversations (platform, workspace, channel, thread, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, workspace, channel, thread)"
                " DO UPDATE SET updated_at = excluded.updated_at"
                " RETURNING id",
                (*key_params(key), created, created),
            )
            conversation_id = next(iter(rows))[0]
            cursor = await db.execute(
                "INSERT INTO messages (conversation_id, role, author_id, author_name, text, status,"
                " platform_message_id, owner, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    role,
                    author_id,
                    author_name,
                    text,
                    status,
                    platform_message_id,
                    owner,
                    created,
                    created,
                ),
            )
            message_id = cursor.lastrowid
            assert message_id is not None
            if attachments:
                await db.executemany(
                    "INSERT INTO attachments (message_id, position, kind, mime, size, sha256, name, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    attachment_rows(message_id, attachments),
                )
            return message_id

        return await self._write(body)

    async def update_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        status: MessageStatus | None = None,
        platform_message_id: str | None = None,
    ) -> bool:
        columns = message_changes(text, status, platform_message_id)
        assignments = ", ".join(f"{column} = ?" for column, _ in columns)
        params = [value for _, value in columns]

        async def body(db: aiosqlite.Connection) -> bool:
            cursor = await db.execute(
                f"UPDATE messages SET {assignments + ', ' if assignments else ''}updated_at = ? WHERE id = ?",
                (*params, utc_now().timestamp(), message_id),
            )
            return cursor.rowcount > 0

        return await self._write(body)

    async def add_message_parts(self, message_id: int, platform_message_ids: Sequence[str]) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            await db.executemany(
                "INSERT OR IGNORE INTO message_parts (message_id, platform_message_id) VALUES (?, ?)",
                [(message_id, part) for part in platform_message_ids],
            )

        await self._write(body)

    async def conversation(self, key: ConversationKey, limit: int = 200) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM conversations c JOIN messages m ON m.conversation_id = c.id"
            f" WHERE {_IS_CONVERSATION} ORDER BY m.id DESC LIMIT ?",
            (*key_params(key), max(limit, 0)),
        )
        return await self._messages(reversed(rows))

    async def has_conversation(self, key: ConversationKey) -> bool:
        rows = await self._read(
            f"SELECT 1 FROM conversations c WHERE {_IS_CONVERSATION}"
            " AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)",
            key_params(key),
        )
        return bool(rows)

    async def find_by_platform_message(
        self, platform: Platform, platform_message_id: str
    ) -> StoredMessage | None:
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.platform = ? AND (m.platform_message_id = ? OR m.id IN"
            " (SELECT message_id FROM message_parts WHERE platform_message_id = ?))"
            " ORDER BY m.id DESC LIMIT 1",
            (platform, platform_message_id, platform_message_id),
        )
        found = await self._messages(rows)
        return found[0] if found else None

    async def recover_streaming(self, self_instance: str | None = None) -> list[StoredMessage]:
        async def body(db: aiosqlite.Connection) -> list[int]:
            now = utc_now().timestamp()
            rows = await db.execute_fetchall(
                "UPDATE messages SET status = 'interrupted', updated_at = :now"
                " WHERE status = 'streaming' AND (owner IS NULL OR owner = :self OR NOT EXISTS"
                "  (SELECT 1 FROM instance_leases l WHERE l.instance_id = owner AND l.expires_at > :now))"
                " RETURNING id",
                {"now": now, "self": self_instance},
            )
            return [row[0] for row in rows]

        ids = await self._write(body)
        if not ids:
            return []
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.id IN (SELECT value FROM json_each(?)) ORDER BY m.id",
            (json.dumps(ids),),
        )
        return await self._messages(rows)

    async def _messages(self, rows: Iterable[Any]) -> list[StoredMessage]:
        rows = list(rows)
        if not rows:
            return []
        attachment_rows = await self._read(
            f"SELECT {ATTACHMENT_COLUMNS} FROM attachments"
            " WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, position",
            (json.dumps([row[0] for row in rows]),),
        )
        return stored_messages(rows, attachment_rows, _from_epoch)

    # --- instance leases -----------------------------------------------------------------------------

    async def heartbeat(self, instance_id: str, ttl_s: float) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO instance_leases (instance_id, expires_at) VALUES (?, ?)"
                " ON CONFLICT (instance_id) DO UPDATE SET expires_at = excluded.expires_at",
                (instance_id, utc_now().timestamp() + ttl_s),
            )

        await self._write(body)

    async def live_instances(self) -> list[str]:
        rows = await self._read(
            "SELECT instance_id FROM instance_leases WHERE expires_at > ? ORDER BY instance_id",
            (utc_now().timestamp(),),
        )
        return [row[0] for row in rows]

    async def release_instance(self, instance_id: str) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM instance_leases WHERE instance_id = ?", (instance_id,))

        await self._write(body)

    # --- settings ------------------------------------------------------------------------------------

    async def set_setting(
        self, name: str, value: str | None, scope: SettingScope, platform: Platform, scope_id: str
    ) -> None:
        stored = checked_setting(name, value, scope)

        async def body(db: aiosqlite.Connection) -> None:
            if stored is None:
                await db.execute(
                    "DELETE FROM settings WHERE name = ? AND platform = ? AND scope = ? AND scope_id = ?",
                    (name, platform, scope, scope_id),
                )
            else:
                await db.execute(
                    "INSERT INTO settings (name, platform, scope, scope_id, value, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, platform, scope, scope_id)"
                    " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (name, platform, scope, scope_id, stored, utc_now().timestamp()),
                )

        await self._write(body)

    async def get_setting(
        self, name: str, scope: SettingScope, platform: Platform, scope_id: str
    ) -> str | None:
        rows = await self._read(
            "SELECT value FROM settings WHERE name = ? AND platform = ? AND scope = ? AND scope_id = ?",
            (name, platform, scope, scope_id),
        )
        return rows[0][0] if rows else None

    async def resolve_setting(
        self,
        name: str,
        platform: Platform,
        workspace: str,
        channel: str | None = None,
        user: str | None = None,
    ) -> tuple[str, SettingScope] | None:
        wanted = {"user": user, "channel": channel, "workspace": workspace}
        rows = await self._read(
            "SELECT scope, value FROM settings WHERE name = ? AND platform = ? AND ("
            "(scope = 'user' AND scope_id = ?) OR (scope = 'channel' AND scope_id = ?)"
            " OR (scope = 'workspace' AND scope_id = ?))",
            (name, platform, wanted["user"], wanted["channel"], wanted["workspace"]),
        )
        return most_specific(rows)

    async def list_settings(self, *names: str) -> list[StoredSetting]:
        for name in names:
            check_setting_name(name)
        rows = await self._read(
            "SELECT name, scope, platform, scope_id, value, updated_at FROM settings"
            " WHERE ? = 0 OR name IN (SELECT value FROM json_each(?))"
            " ORDER BY name, platform, scope, scope_id",
            (len(names), json.dumps(names)),
        )
        return [
            StoredSetting(name, scope, platform, scope_id, value, _from_epoch(updated))
            for name, scope, platform, scope_id, value, updated in rows
        ]

    async def record_setting_change(self, change: SettingChange) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO setting_changes (at, actor, name, scope, platform, scope_id, old_value,"
                " new_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    change.at.timestamp(), change.actor, change.name, change.scope, change.platform,
                    change.scope_id, change.old, change.new,
                ),
            )  # fmt: skip

        await self._write(body)

    async def setting_changes(self, limit: int = 50) -> list[SettingChange]:
        rows = await self._read(
            "SELECT actor, name, scope, platform, scope_id, old_value, new_value, at FROM setting_changes"
            " ORDER BY id DESC LIMIT ?",
            (max(limit, 0),),
        )
        return [SettingChange(*row[:7], at=_from_epoch(row[7])) for row in rows]

    # --- feedback on answers ---------------------------------------------------------------------------

    async def record_feedback(self, feedback: Feedback) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            await db.execute(
                f"INSERT OR REPLACE INTO answer_feedback ({feedback_columns('usd_nanos')})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    feedback.platform, feedback.workspace, feedback.channel, feedback.platform_message_id,
                    feedback.user, feedback.rating, feedback.effort, feedback.tool_calls,
                    to_nanos(feedback.usd), feedback.reply_id, feedback.at.timestamp(),
                ),
            )  # fmt: skip

        await self._write(body)

    async def feedback_rates(self, by: FeedbackGroupBy) -> list[FeedbackRate]:
        return [feedback_rate(by, row) for row in await self._read(feedback_rates_query(by))]

    async def disliked_answers(self, limit: int = 50) -> list[Feedback]:
        rows = await self._read(
            f"SELECT {feedback_columns('usd_nanos')} FROM answer_feedback WHERE rating = 'down'"
            " ORDER BY at DESC LIMIT ?",
            (max(limit, 0),),
        )
        return [feedback(row, from_nanos, _from_epoch) for row in rows]

    # --- ledger and reports --------------------------------------------------------------------------

    async def record_usage(self, *entries: LedgerEntry) -> int:
        if not entries:
            return 0

        async def body(db: aiosqlite.Connection) -> int:
            return await _insert_ledger(db, entries)

        return await self._write(body)

    async def usage_totals(self, where: UsageFilter, since: date | None = None) -> UsageTotals:
        table, condition, params = usage_query(where, since, _question_mark, date.isoformat)
        rows = await self._read(f"SELECT {_TOTAL_COLUMNS} FROM {table} WHERE {condition}", params)
        return _totals(rows[0])

    async def usage_breakdown(
        self, where: UsageFilter, by: UsageGroupBy, since: date | None = None, limit: int = 10
    ) -> list[UsageGroup]:
        column = GROUP_COLUMNS[by]
        table, condition, params = usage_query(where, since, _question_mark, date.isoformat)
        rows = await self._read(
            f"SELECT {column}, {_TOTAL_COLUMNS} FROM {table} WHERE {condition} GROUP BY {column}"
            f" ORDER BY SUM(usd_nanos) DESC, SUM(requests) DESC, {column} LIMIT ?",
            (*params, max(limit, 0)),
        )
        return [UsageGroup(row[0], _totals(row[1:])) for row in rows]

    async def iter_ledger(
        self, since: date | None = None, until: date | None = None, *, batch: int = 5000
    ) -> AsyncIterator[LedgerEntry]:
        start, end = (bound.timestamp() for bound in ledger_window(since, until))

        async def page(after_at: float, after_id: int, limit: int) -> list[Any]:
            # The keyset (at, id) walks usage_ledger_by_time, whose entries carry the rowid. It is the
            # only lower bound, so SQLite cannot pick `since` to start every batch from.
            return await self._read(
                f"SELECT id, {_LEDGER_COLUMNS} FROM usage_ledger"
                " WHERE (at, id) > (?, ?) AND at < ? ORDER BY at, id LIMIT ?",
                (after_at, after_id, end, limit),
            )

        async for row in walk_ledger(page, start, batch):
            yield ledger_entry(row, from_nanos, _from_epoch)

    async def usage_by_day(
        self, since: date | None = None, until: date | None = None, where: UsageFilter | None = None
    ) -> list[DailyUsage]:
        condition, params = range_condition(where, since, until, _question_mark, date.isoformat)
        rows = await self._read(
            f"SELECT day, platform, {_TOTAL_COLUMNS} FROM usage_daily WHERE {condition}"
            " GROUP BY day, platform ORDER BY day, platform",
            params,
        )
        return [DailyUsage(date.fromisoformat(row[0]), row[1], _totals(row[2:])) for row in rows]

    async def usage_groups(
        self,
        by: UsageGroupBy,
        since: date | None = None,
        until: date | None = None,
        where: UsageFilter | None = None,
        limit: int | None = None,
    ) -> list[ScopedUsage]:
        column = GROUP_COLUMNS[by]
        condition, params = range_condition(where, since, until, _question_mark, date.isoformat)
        table = rollup_for(since, until)
        rows = await self._read(
            f"SELECT platform, workspace, {column}, {_TOTAL_COLUMNS} FROM {table} WHERE {condition}"
            f" GROUP BY platform, workspace, {column}"
            f" ORDER BY SUM(usd_nanos) DESC, SUM(requests) DESC, platform, workspace, {column} LIMIT ?",
            (*params, -1 if limit is None else max(limit, 0)),
        )
        return [ScopedUsage(row[0], row[1], row[2], _totals(row[3:])) for row in rows]

    async def failed_calls(self, limit: int = 50) -> list[LedgerEntry]:
        rows = await self._read(
            f"SELECT {_LEDGER_COLUMNS} FROM usage_ledger WHERE outcome <> 'ok' ORDER BY at DESC LIMIT ?",
            (max(limit, 0),),
        )
        return [ledger_entry(row, from_nanos, _from_epoch) for row in rows]

    async def unfinished_replies(self, limit: int = 50) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.status IN ('interrupted', 'error') ORDER BY m.id DESC LIMIT ?",
            (max(limit, 0),),
        )
        return await self._messages(rows)

    # --- budgets -------------------------------------------------------------------------------------

    async def reserve_budget(self, request: ReservationRequest) -> Reservation | BudgetRefusal:
        amount = to_nanos(request.amount, ROUND_CEILING)
        today = request.at.astimezone(UTC).date()
        month = today.isoformat()[:7]
        live_since = (request.at - RESERVATION_TTL).timestamp()
        key = (request.platform, request.workspace)

        async def body(db: aiosqlite.Connection) -> Reservation | BudgetRefusal:
            await db.execute("DELETE FROM budget_reservations WHERE created_at < ?", (live_since,))
            rows = await db.execute_fetchall(
                "SELECT"
                " (SELECT COALESCE(SUM(usd_nanos), 0) FROM usage_daily"
                "   WHERE platform = ? AND workspace = ? AND user_id = ? AND day = ?),"
                " (SELECT COALESCE(SUM(amount_nanos), 0) FROM budget_reservations"
                "   WHERE platform = ? AND workspace = ? AND user_id = ? AND created_at >= ?),"
                " (SELECT COALESCE(SUM(usd_nanos), 0) FROM usage_monthly"
                "   WHERE platform = ? AND workspace = ? AND month = ?),"
                " (SELECT COALESCE(SUM(amount_nanos), 0) FROM budget_reservations"
                "   WHERE platform = ? AND workspace = ? AND created_at >= ?)",
                (
                    *key, request.user, today.isoformat(),
                    *key, request.user, live_since,
                    *key, month,
                    *key, live_since,
                ),
            )  # fmt: skip
            refusal = budget_refusal(request, from_nanos(amount), *map(from_nanos, next(iter(rows))))
            if refusal is not None:
                return refusal
            cursor = await db.execute(
                "INSERT INTO budget_reservations (platform, workspace, user_id, amount_nanos, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (*key, request.user, amount, request.at.timestamp()),
            )
            assert cursor.lastrowid is not None
            return Reservation(cursor.lastrowid, from_nanos(amount))

        return await self._write(body)

    async def settle_reservation(self, reservation_id: int, entry: LedgerEntry | None) -> None:
        async def body(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation_id,))
            if entry is not None:
                await _insert_ledger(db, (entry,))

        await self._write(body)

    # --- retention -----------------------------------------------------------------------------------

    async def purge_messages(self, before: datetime) -> int:
        async def body(db: aiosqlite.Connection) -> int:
            cursor = await db.execute("DELETE FROM messages WHERE created_at < ?", (before.timestamp(),))
            await db.execute(
                "DELETE FROM conversations WHERE updated_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id)",
                (before.timestamp(),),
            )
            return cursor.rowcount

        return await self._write(body)

    async def forget_conversation(self, key: ConversationKey) -> int:
        async def body(db: aiosqlite.Connection) -> int:
            cursor = await db.execute(
                "DELETE FROM messages WHERE conversation_id IN"
                f" (SELECT id FROM conversations c WHERE {_IS_CONVERSATION})",
                key_params(key),
            )
            await db.execute(f"DELETE FROM conversations AS c WHERE {_IS_CONVERSATION}", key_params(key))
            return cursor.rowcount

        return await self._write(body)

    async def forget_user(self, platform: Platform, user_id: str) -> int:
        async def body(db: aiosqlite.Connection) -> int:
            rows = await db.execute_fetchall(
                "SELECT DISTINCT m.conversation_id FROM messages m"
                " JOIN conversations c ON c.id = m.conversation_id"
                " WHERE m.author_id = ? AND m.role = 'user' AND c.platform = ?",
                (user_id, platform),
            )
            touched = json.dumps([row[0] for row in rows])
            cursor = await db.execute(
                "DELETE FROM messages WHERE conversation_id IN (SELECT value FROM json_each(:touched)) AND ("
                " (role = 'user' AND author_id = :user)"
                " OR NOT EXISTS (SELECT 1 FROM messages other"
                "   WHERE other.conversation_id = messages.conversation_id"
                "   AND other.role = 'user' AND other.author_id <> :user))",
                {"touched": touched, "user": user_id},
            )
            await db.execute(
                "DELETE FROM conversations WHERE id IN (SELECT value FROM json_each(?))"
                " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id)",
                (touched,),
            )
            await db.execute(
                "DELETE FROM settings WHERE scope = 'user' AND platform = ? AND scope_id = ?",
                (platform, user_id),
            )
            await db.execute(
                "DELETE FROM answer_feedback WHERE platform = ? AND user_id = ?", (platform, user_id)
            )
            return cursor.rowcount

        return await self._write(body)


async def _connect(path: Path, busy_timeout_s: float) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_s)
    try:
        await connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        await connection.execute("PRAGMA foreign_keys = ON")
        # With WAL, NORMAL loses no committed transaction on a process crash (only on power loss).
        await connection.execute("PRAGMA synchronous = NORMAL")
        # Report and budget queries walk roll-up indexes; SQLite's default 2 MB page cache thrashes on them.
        await connection.execute("PRAGMA cache_size = -32768")
    except BaseException:
        await connection.close()
        raise
    return connection


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    # Taking the write lock even when there is nothing to do tells a locked database apart at start-up,
    # and makes two processes starting together migrate one after the other.
    await db.execute("BEGIN IMMEDIATE")
    try:
        version = next(iter(await db.execute_fetchall("PRAGMA user_version")))[0]
        for migration in pending(MIGRATIONS, version, str(path)):
            for statement in migration.statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {migration.version}")
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise


async def _insert_ledger(db: aiosqlite.Connection, entries: Sequence[LedgerEntry]) -> int:
    cursor = await db.executemany(
        "INSERT INTO usage_ledger (request_id, at, day, platform, workspace, channel, user_id, model, effort,"
        " prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, usd_nanos, cost_source, ttft_s,"
        " latency_s, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (request_id) DO NOTHING",
        [
            (
                e.request_id, e.at.timestamp(), utc_day(e.at).isoformat(), e.platform, e.workspace,
                e.channel, e.user, e.model, e.effort, e.prompt_tokens, e.completion_tokens,
                e.reasoning_tokens, e.cached_tokens, to_nanos(e.usd), e.cost_source, e.ttft_s, e.latency_s,
                e.outcome,
            )
            for e in entries
        ],
    )  # fmt: skip
    # Counts the ledger rows inserted (not the trigger's roll-up changes, nor skipped duplicates).
    return cursor.rowcount


def _totals(row: Sequence[int]) -> UsageTotals:
    requests, prompt, completion, reasoning, cached, nanos = row
    return UsageTotals(requests, prompt, completion, reasoning, cached, from_nanos(nanos))
