"""The PostgreSQL backend of `Store`, through asyncpg and its connection pool.

Several bot instances may share one database, so everything that must hold across them is the
database's job: claims and ledger rows are unique keys (`ON CONFLICT DO NOTHING`), budget holds are
taken under a transaction-scoped advisory lock per workspace, and migrations run under an advisory lock
so instances starting together migrate once.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg

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
from core.store.migrations import pending
from core.store.postgres_migrations import MIGRATIONS
from core.store.rows import (
    ATTACHMENT_COLUMNS,
    GROUP_COLUMNS,
    MESSAGE_COLUMNS,
    RESERVATION_TTL,
    attachment_rows,
    budget_refusal,
    exact_usd,
    feedback,
    feedback_columns,
    feedback_rate,
    feedback_rates_query,
    is_conversation,
    key_params,
    ledger_columns,
    ledger_entry,
    ledger_window,
    message_changes,
    most_specific,
    normal_usd,
    range_condition,
    rollup_for,
    stored_messages,
    usage_query,
    utc_day,
    walk_ledger,
)

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
# Bounds every statement: a wedged server or a lock held by a stuck session fails the call, not the bot.
COMMAND_TIMEOUT_S = 30.0
POOL_SIZE = 10
# A lease heartbeat must not queue behind a burst of answers for a pooled connection: if it waited a
# whole lease, peers would take this live instance's answers over. Leases get a connection of their own.
LEASE_POOL_SIZE = 1
# Advisory-lock keys are one bigint space per database: these two namespaces keep ours apart.
_MIGRATION_LOCK = 0x5EED_0001
_BUDGET_LOCK_NAMESPACE = "seedbot budget"


def _dollar(n: int) -> str:
    return f"${n}"


_IS_CONVERSATION = is_conversation(_dollar)
_TOTAL_COLUMNS = (
    "COALESCE(SUM(requests), 0)::bigint, COALESCE(SUM(prompt_tokens), 0)::bigint,"
    " COALESCE(SUM(completion_tokens), 0)::bigint, COALESCE(SUM(reasoning_tokens), 0)::bigint,"
    " COALESCE(SUM(cached_tokens), 0)::bigint, COALESCE(SUM(usd), 0)"
)
_LEDGER_COLUMNS = (
    "request_id, at, day, platform, workspace, channel, user_id, model, effort, prompt_tokens,"
    " completion_tokens, reasoning_tokens, cached_tokens, usd, cost_source, ttft_s, latency_s, outcome"
)
_LEDGER_TYPES = (
    "text", "timestamptz", "date", "text", "text", "text", "text", "text", "text", "bigint",
    "bigint", "bigint", "bigint", "numeric", "text", "float8", "float8", "text",
)  # fmt: skip
_READ_LEDGER_COLUMNS = ledger_columns("usd")
# One INSERT for a whole batch (arrays unnested into rows), so the roll-up trigger runs once per batch.
_INSERT_LEDGER = (
    f"INSERT INTO usage_ledger ({_LEDGER_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_LEDGER_TYPES, 1))
    + ") ON CONFLICT (request_id) DO NOTHING"
)


def redacted_url(url: str) -> str:
    """`url` without its password (or query), fit for logs and error messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the PostgreSQL URL in DATABASE_URL"
    user = f"{unquote(parts.username)}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def describe_postgres_error(url: str, error: BaseException) -> str:
    """One line an operator can act on, naming the server and DATABASE_URL but never the password."""
    try:
        parts = urlsplit(url)
        host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        user = unquote(parts.username or "") or "(default user)"
        database = unquote(parts.path.lstrip("/")) or user
        password = unquote(parts.password or "")
    except ValueError:
        return "DATABASE_URL is not a valid postgresql://user:password@host:port/database URL"
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if password:
        detail = detail.replace(password, "***")
    if isinstance(error, asyncpg.InvalidPasswordError):
        message = f"PostgreSQL at {host} rejected the password of user {user!r}"
    elif isinstance(error, asyncpg.InvalidCatalogNameError):
        message = f"database {database!r} does not exist on PostgreSQL at {host}: create it (createdb)"
    elif isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        message = f"PostgreSQL at {host} refused user {user!r} ({detail})"
    elif isinstance(error, asyncpg.TooManyConnectionsError):
        message = f"PostgreSQL at {host} has no connection slot left ({detail})"
    elif isinstance(error, socket.gaierror):
        message = f"cannot resolve the PostgreSQL host in {redacted_url(url)}"
    elif isinstance(error, TimeoutError):
        message = f"PostgreSQL at {host} did not answer in time (is it up and reachable?)"
    elif isinstance(error, ConnectionRefusedError):
        message = f"cannot reach PostgreSQL at {host}: connection refused (is it running?)"
    elif isinstance(error, OSError):
        message = f"cannot reach PostgreSQL at {host}: {detail}"
    elif isinstance(error, asyncpg.PostgresError):
        message = f"PostgreSQL at {host} failed: {detail}"
    else:
        message = f"the connection to PostgreSQL at {host} failed: {detail}"
    return f"{message}; check DATABASE_URL"


# What talking to the server can raise; everything else is a bug and keeps its traceback.
# InternalClientError: a pooled connection the server cut (a restart, an outage) in the middle of use.
_DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


class PostgresStore:
    def __init__(self, url: str, pool: asyncpg.Pool, lease_pool: asyncpg.Pool) -> None:
        self._url = url
        self._pool = pool
        self._lease_pool = lease_pool

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> PostgresStore:
        """Connect and migrate, or raise StoreError saying why not (without the password)."""
        connect = functools.partial(
            asyncpg.create_pool, url, timeout=connect_timeout_s, command_timeout=command_timeout_s
        )
        try:
            pool = await connect(min_size=1, max_size=pool_size)
            # Connects at the first lease call; a pool of one reconnects by itself after an outage.
            lease_pool = await connect(min_size=0, max_size=LEASE_POOL_SIZE)
        except ValueError:
            # A malformed URL; asyncpg's message may quote it, password and all.
            raise StoreError(
                "DATABASE_URL is not a valid postgresql://user:password@host:port/database URL"
            ) from None
        except _DATABASE_ERRORS as error:
            raise StoreError(describe_postgres_error(url, error)) from None
        store = cls(url, pool, lease_pool)
        try:
            await store._transaction(_migrate)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self._lease_pool.close()
        await self._pool.close()

    # --- plumbing ------------------------------------------------------------------------------------

    async def _transaction(
        self, body: Callable[[asyncpg.Connection], Awaitable[T]], *, pool: asyncpg.Pool | None = None
    ) -> T:
        # Shielded so that a cancelled caller does not abandon a transaction mid-way on a pooled
        # connection: the (short, statement-timed) transaction finishes. The cancellation waits for
        # that end before it goes on, so a write the caller cancelled never lands after it moved on.
        work = asyncio.ensure_future(self._run_transaction(body, pool or self._pool))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait({work})
            if not work.cancelled():
                work.exception()  # the caller is gone: its failure is not news to anyone
            raise

    async def _run_transaction(
        self, body: Callable[[asyncpg.Connection], Awaitable[T]], pool: asyncpg.Pool
    ) -> T:
        try:
            async with pool.acquire() as connection, connection.transaction():
                return await body(connection)
        except _DATABASE_ERRORS as error:
            raise StoreError(describe_postgres_error(self._url, error)) from None

    async def _read(self, sql: str, *params: Any, pool: asyncpg.Pool | None = None) -> list[asyncpg.Record]:
        try:
            return await (pool or self._pool).fetch(sql, *params)
        except _DATABASE_ERRORS as error:
            raise StoreError(describe_postgres_error(self._url, error)) from None

    async def schema_version(self) -> int:
        rows = await self._read("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    # --- platform events -----------------------------------------------------------------------------

    async def claim_event(self, platform: Platform, event_id: str, *, at: datetime | None = None) -> bool:
        async def body(db: asyncpg.Connection) -> bool:
            claimed = await db.fetchval(
                "INSERT INTO processed_events (platform, event_id, processed_at) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING TRUE",
                platform,
                event_id,
                at or utc_now(),
            )
            return bool(claimed)

        return await self._transaction(body)

    async def purge_events(self, before: datetime) -> int:
        async def body(db: asyncpg.Connection) -> int:
            return _count(await db.execute("DELETE FROM processed_events WHERE processed_at < $1", before))

        return await self._transaction(body)

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
        created = at or utc_now()

        async def body(db: asyncpg.Connection) -> int:
            conversation_id = await db.fetchval(
                "INSERT INTO conversations (platform, workspace, channel, thread, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $5)"
                " ON CONFLICT (platform, workspace, channel, thread)"
                " DO UPDATE SET updated_at = excluded.updated_at"
                " RETURNING id",
                *key_params(key),
                created,
            )
            message_id: int = await db.fetchval(
                "INSERT INTO messages (conversation_id, role, author_id, author_name, text, status,"
                " platform_message_id, owner, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
                conversation_id,
                role,
                author_id,
                author_name,
                text,
                status,
                platform_message_id,
                owner,
                created,
            )
            if attachments:
                await db.executemany(
                    "INSERT INTO attachments (message_id, position, kind, mime, size, sha256, name, source)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    attachment_rows(message_id, attachments),
                )
            return message_id

        return await self._transaction(body)

    async def update_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        status: MessageStatus | None = None,
        platform_message_id: str | None = None,
    ) -> bool:
        columns = message_changes(text, status, platform_message_id)
        assignments = "".join(f"{column} = ${n}, " for n, (column, _) in enumerate(columns, 3))

        async def body(db: asyncpg.Connection) -> bool:
            result = await db.execute(
                f"UPDATE messages SET {assignments}updated_at = $2 WHERE id = $1",
                message_id,
                utc_now(),
                *(value for _, value in columns),
            )
            return _count(result) > 0

        return await self._transaction(body)

    async def add_message_parts(self, message_id: int, platform_message_ids: Sequence[str]) -> None:
        async def body(db: asyncpg.Connection) -> None:
            await db.execute(
                "INSERT INTO message_parts (message_id, platform_message_id)"
                " SELECT $1, part FROM unnest($2::text[]) AS part ON CONFLICT DO NOTHING",
                message_id,
                list(platform_message_ids),
            )

        await self._transaction(body)

    async def conversation(self, key: ConversationKey, limit: int = 200) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM conversations c JOIN messages m ON m.conversation_id = c.id"
            f" WHERE {_IS_CONVERSATION} ORDER BY m.id DESC LIMIT $5",
            *key_params(key),
            max(limit, 0),
        )
        return await self._messages(list(reversed(rows)))

    async def has_conversation(self, key: ConversationKey) -> bool:
        rows = await self._read(
            f"SELECT 1 FROM conversations c WHERE {_IS_CONVERSATION}"
            " AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)",
            *key_params(key),
        )
        return bool(rows)

    async def find_by_platform_message(
        self, platform: Platform, platform_message_id: str
    ) -> StoredMessage | None:
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.platform = $1 AND (m.platform_message_id = $2 OR m.id IN"
            " (SELECT message_id FROM message_parts WHERE platform_message_id = $2))"
            " ORDER BY m.id DESC LIMIT 1",
            platform,
            platform_message_id,
        )
        found = await self._messages(rows)
        return found[0] if found else None

    async def recover_streaming(self, self_instance: str | None = None) -> list[StoredMessage]:
        async def body(db: asyncpg.Connection) -> list[asyncpg.Record]:
            # The database's clock judges leases, so instances on machines with skewed clocks agree.
            return await db.fetch(
                f"WITH taken AS (UPDATE messages SET status = 'interrupted', updated_at = now()"
                " WHERE status = 'streaming' AND (owner IS NULL OR owner = $1 OR NOT EXISTS"
                "  (SELECT 1 FROM instance_leases l WHERE l.instance_id = owner AND l.expires_at > now()))"
                " RETURNING *)"
                f" SELECT {MESSAGE_COLUMNS} FROM taken m JOIN conversations c ON c.id = m.conversation_id"
                " ORDER BY m.id",
                self_instance,
            )

        return await self._messages(await self._transaction(body))

    async def _messages(self, rows: Sequence[asyncpg.Record]) -> list[StoredMessage]:
        if not rows:
            return []
        attachment_rows = await self._read(
            f"SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE message_id = ANY($1::bigint[])"
            " ORDER BY message_id, position",
            [row[0] for row in rows],
        )
        return stored_messages(rows, attachment_rows, _as_is)

    # --- instance leases -----------------------------------------------------------------------------

    async def heartbeat(self, instance_id: str, ttl_s: float) -> None:
        async def body(db: asyncpg.Connection) -> None:
            await db.execute(
                "INSERT INTO instance_leases (instance_id, expires_at) VALUES ($1, now() + $2::interval)"
                " ON CONFLICT (instance_id) DO UPDATE SET expires_at = excluded.expires_at",
                instance_id,
                timedelta(seconds=ttl_s),
            )

        await self._transaction(body, pool=self._lease_pool)

    async def live_instances(self) -> list[str]:
        rows = await self._read(
            "SELECT instance_id FROM instance_leases WHERE expires_at > now() ORDER BY instance_id",
            pool=self._lease_pool,
        )
        return [row[0] for row in rows]

    async def release_instance(self, instance_id: str) -> None:
        async def body(db: asyncpg.Connection) -> None:
            await db.execute("DELETE FROM instance_leases WHERE instance_id = $1", instance_id)

        await self._transaction(body, pool=self._lease_pool)

    # --- settings ------------------------------------------------------------------------------------

    async def set_setting(
        self, name: str, value: str | None, scope: SettingScope, platform: Platform, scope_id: str
    ) -> None:
        stored = checked_setting(name, value, scope)

        async def body(db: asyncpg.Connection) -> None:
            if stored is None:
                await db.execute(
                    "DELETE FROM settings WHERE name = $1 AND platform = $2 AND scope = $3 AND scope_id = $4",
                    name,
                    platform,
                    scope,
                    scope_id,
                )
            else:
                await db.execute(
                    "INSERT INTO settings (name, platform, scope, scope_id, value, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name, platform, scope, scope_id)"
                    " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    name,
                    platform,
                    scope,
                    scope_id,
                    stored,
                    utc_now(),
                )

        await self._transaction(body)

    async def get_setting(
        self, name: str, scope: SettingScope, platform: Platform, scope_id: str
    ) -> str | None:
        rows = await self._read(
            "SELECT value FROM settings WHERE name = $1 AND platform = $2 AND scope = $3 AND scope_id = $4",
            name,
            platform,
            scope,
            scope_id,
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
        rows = await self._read(
            "SELECT scope, value FROM settings WHERE name = $1 AND platform = $2 AND ("
            "(scope = 'user' AND scope_id = $3) OR (scope = 'channel' AND scope_id = $4)"
            " OR (scope = 'workspace' AND scope_id = $5))",
            name,
            platform,
            user,
            channel,
            workspace,
        )
        return most_specific(rows)

    async def list_settings(self, *names: str) -> list[StoredSetting]:
        for name in names:
            check_setting_name(name)
        # COLLATE "C" orders by code point, as SQLite does, whatever the database's locale.
        rows = await self._read(
            "SELECT name, scope, platform, scope_id, value, updated_at FROM settings"
            " WHERE cardinality($1::text[]) = 0 OR name = ANY($1::text[])"
            ' ORDER BY name COLLATE "C", platform COLLATE "C", scope COLLATE "C", scope_id COLLATE "C"',
            list(names),
        )
        return [StoredSetting(*row) for row in rows]

    async def record_setting_change(self, change: SettingChange) -> None:
        async def body(db: asyncpg.Connection) -> None:
            await db.execute(
                "INSERT INTO setting_changes (at, actor, name, scope, platform, scope_id, old_value,"
                " new_value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                change.at, change.actor, change.name, change.scope, change.platform, change.scope_id,
                change.old, change.new,
            )  # fmt: skip

        await self._transaction(body)

    async def setting_changes(self, limit: int = 50) -> list[SettingChange]:
        rows = await self._read(
            "SELECT actor, name, scope, platform, scope_id, old_value, new_value, at FROM setting_changes"
            " ORDER BY id DESC LIMIT $1",
            max(limit, 0),
        )
        return [SettingChange(*row[:7], at=row[7]) for row in rows]

    # --- feedback on answers ---------------------------------------------------------------------------

    async def record_feedback(self, feedback: Feedback) -> None:
        async def body(db: asyncpg.Connection) -> None:
            await db.execute(
                f"INSERT INTO answer_feedback ({feedback_columns('usd')})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (platform, platform_message_id, user_id) DO UPDATE SET"
                " workspace = EXCLUDED.workspace, channel = EXCLUDED.channel, reply_id = EXCLUDED.reply_id,"
                " rating = EXCLUDED.rating, effort = EXCLUDED.effort, tool_calls = EXCLUDED.tool_calls,"
                " usd = EXCLUDED.usd, at = EXCLUDED.at",
                feedback.platform, feedback.workspace, feedback.channel, feedback.platform_message_id,
                feedback.user, feedback.rating, feedback.effort, feedback.tool_calls,
                exact_usd(feedback.usd), feedback.reply_id, feedback.at,
            )  # fmt: skip

        await self._transaction(body)

    async def feedback_rates(self, by: FeedbackGroupBy) -> list[FeedbackRate]:
        return [feedback_rate(by, row) for row in await self._read(feedback_rates_query(by))]

    async def disliked_answers(self, limit: int = 50) -> list[Feedback]:
        rows = await self._read(
            f"SELECT {feedback_columns('usd')} FROM answer_feedback WHERE rating = 'down'"
            " ORDER BY at DESC LIMIT $1",
            max(limit, 0),
        )
        return [feedback(row, normal_usd, _as_is) for row in rows]

    # --- ledger and reports --------------------------------------------------------------------------

    async def record_usage(self, *entries: LedgerEntry) -> int:
        if not entries:
            return 0
        return await self._transaction(lambda db: _insert_ledger(db, entries))

    async def usage_totals(self, where: UsageFilter, since: date | None = None) -> UsageTotals:
        table, condition, params = usage_query(where, since, _dollar, _as_is)
        rows = await self._read(f"SELECT {_TOTAL_COLUMNS} FROM {table} WHERE {condition}", *params)
        return _totals(rows[0])

    async def usage_breakdown(
        self, where: UsageFilter, by: UsageGroupBy, since: date | None = None, limit: int = 10
    ) -> list[UsageGroup]:
        column = GROUP_COLUMNS[by]
        table, condition, params = usage_query(where, since, _dollar, _as_is)
        rows = await self._read(
            f"SELECT {column}, {_TOTAL_COLUMNS} FROM {table} WHERE {condition} GROUP BY {column}"
            f" ORDER BY SUM(usd) DESC, SUM(requests) DESC, {column} LIMIT ${len(params) + 1}",
            *params,
            max(limit, 0),
        )
        return [UsageGroup(row[0], _totals(row[1:])) for row in rows]

    async def iter_ledger(
        self, since: date | None = None, until: date | None = None, *, batch: int = 5000
    ) -> AsyncIterator[LedgerEntry]:
        start, end = ledger_window(since, until)

        async def page(after_at: datetime, after_id: int, limit: int) -> list[asyncpg.Record]:
            # The row comparison matches usage_ledger_by_time (at, id) as one index condition.
            return await self._read(
                f"SELECT id, {_READ_LEDGER_COLUMNS} FROM usage_ledger"
                " WHERE (at, id) > ($1, $2) AND at < $3 ORDER BY at, id LIMIT $4",
                after_at,
                after_id,
                end,
                limit,
            )

        async for row in walk_ledger(page, start, batch):
            yield ledger_entry(row, normal_usd, _as_is)

    async def usage_by_day(
        self, since: date | None = None, until: date | None = None, where: UsageFilter | None = None
    ) -> list[DailyUsage]:
        condition, params = range_condition(where, since, until, _dollar, _as_is)
        rows = await self._read(
            f"SELECT day, platform, {_TOTAL_COLUMNS} FROM usage_daily WHERE {condition}"
            ' GROUP BY day, platform ORDER BY day, platform COLLATE "C"',
            *params,
        )
        return [DailyUsage(row[0], row[1], _totals(row[2:])) for row in rows]

    async def usage_groups(
        self,
        by: UsageGroupBy,
        since: date | None = None,
        until: date | None = None,
        where: UsageFilter | None = None,
        limit: int | None = None,
    ) -> list[ScopedUsage]:
        column = GROUP_COLUMNS[by]
        condition, params = range_condition(where, since, until, _dollar, _as_is)
        table = rollup_for(since, until)
        # Ties are broken in code-point order, as SQLite does; LIMIT NULL is no limit.
        rows = await self._read(
            f"SELECT platform, workspace, {column}, {_TOTAL_COLUMNS} FROM {table} WHERE {condition}"
            f" GROUP BY platform, workspace, {column} ORDER BY SUM(usd) DESC, SUM(requests) DESC,"
            f' platform COLLATE "C", workspace COLLATE "C", {column} COLLATE "C" LIMIT ${len(params) + 1}',
            *params,
            None if limit is None else max(limit, 0),
        )
        return [ScopedUsage(row[0], row[1], row[2], _totals(row[3:])) for row in rows]

    async def failed_calls(self, limit: int = 50) -> list[LedgerEntry]:
        rows = await self._read(
            f"SELECT {_READ_LEDGER_COLUMNS} FROM usage_ledger WHERE outcome <> 'ok'"
            " ORDER BY at DESC LIMIT $1",
            max(limit, 0),
        )
        return [ledger_entry(row, normal_usd, _as_is) for row in rows]

    async def unfinished_replies(self, limit: int = 50) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.status IN ('interrupted', 'error') ORDER BY m.id DESC LIMIT $1",
            max(limit, 0),
        )
        return await self._messages(rows)

    # --- budgets -------------------------------------------------------------------------------------

    async def reserve_budget(self, request: ReservationRequest) -> Reservation | BudgetRefusal:
        amount = exact_usd(request.amount, ROUND_CEILING)
        today = utc_day(request.at)
        live_since = request.at - RESERVATION_TTL
        key = (request.platform, request.workspace)

        async def body(db: asyncpg.Connection) -> Reservation | BudgetRefusal:
            # Every hold in a workspace queues on one lock (user budgets lie within a workspace), held to
            # the end of the transaction; the sums below are read after it is taken, so they include
            # every hold and settlement committed before.
            await db.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"{_BUDGET_LOCK_NAMESPACE} {request.platform} {request.workspace}",
            )
            await db.execute(
                "DELETE FROM budget_reservations WHERE platform = $1 AND workspace = $2 AND created_at < $3",
                *key,
                live_since,
            )
            row = await db.fetchrow(
                "SELECT"
                " (SELECT COALESCE(SUM(usd), 0) FROM usage_daily"
                "   WHERE platform = $1 AND workspace = $2 AND user_id = $3 AND day = $4),"
                " (SELECT COALESCE(SUM(amount), 0) FROM budget_reservations"
                "   WHERE platform = $1 AND workspace = $2 AND user_id = $3 AND created_at >= $5),"
                " (SELECT COALESCE(SUM(usd), 0) FROM usage_monthly"
                "   WHERE platform = $1 AND workspace = $2 AND month = $6),"
                " (SELECT COALESCE(SUM(amount), 0) FROM budget_reservations"
                "   WHERE platform = $1 AND workspace = $2 AND created_at >= $5)",
                *key, request.user, today, live_since, today.replace(day=1),
            )  # fmt: skip
            assert row is not None
            refusal = budget_refusal(request, amount, *map(normal_usd, row))
            if refusal is not None:
                return refusal
            reservation_id = await db.fetchval(
                "INSERT INTO budget_reservations (platform, workspace, user_id, amount, created_at)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                *key,
                request.user,
                amount,
                request.at,
            )
            return Reservation(reservation_id, amount)

        return await self._transaction(body)

    async def settle_reservation(self, reservation_id: int, entry: LedgerEntry | None) -> None:
        async def body(db: asyncpg.Connection) -> None:
            await db.execute("DELETE FROM budget_reservations WHERE id = $1", reservation_id)
            if entry is not None:
                await _insert_ledger(db, (entry,))

        await self._transaction(body)

    # --- retention -----------------------------------------------------------------------------------

    async def purge_messages(self, before: datetime) -> int:
        async def body(db: asyncpg.Connection) -> int:
            deleted = _count(await db.execute("DELETE FROM messages WHERE created_at < $1", before))
            await db.execute(
                "DELETE FROM conversations c WHERE updated_at < $1"
                " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)",
                before,
            )
            return deleted

        return await self._transaction(body)

    async def forget_conversation(self, key: ConversationKey) -> int:
        async def body(db: asyncpg.Connection) -> int:
            deleted = _count(
                await db.execute(
                    "DELETE FROM messages WHERE conversation_id IN"
                    f" (SELECT id FROM conversations c WHERE {_IS_CONVERSATION})",
                    *key_params(key),
                )
            )
            await db.execute(f"DELETE FROM conversations c WHERE {_IS_CONVERSATION}", *key_params(key))
            return deleted

        return await self._transaction(body)

    async def forget_user(self, platform: Platform, user_id: str) -> int:
        async def body(db: asyncpg.Connection) -> int:
            touched = [
                row[0]
                for row in await db.fetch(
                    "SELECT DISTINCT m.conversation_id FROM messages m"
                    " JOIN conversations c ON c.id = m.conversation_id"
                    " WHERE m.author_id = $1 AND m.role = 'user' AND c.platform = $2",
                    user_id,
                    platform,
                )
            ]
            deleted = _count(
                await db.execute(
                    "DELETE FROM messages WHERE conversation_id = ANY($1::bigint[]) AND ("
                    " (role = 'user' AND author_id = $2)"
                    " OR NOT EXISTS (SELECT 1 FROM messages other"
                    "   WHERE other.conversation_id = messages.conversation_id"
                    "   AND other.role = 'user' AND other.author_id <> $2))",
                    touched,
                    user_id,
                )
            )
            await db.execute(
                "DELETE FROM conversations c WHERE id = ANY($1::bigint[])"
                " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)",
                touched,
            )
            await db.execute(
                "DELETE FROM settings WHERE scope = 'user' AND platform = $1 AND scope_id = $2",
                platform,
                user_id,
            )
            await db.execute(
                "DELETE FROM answer_feedback WHERE platform = $1 AND user_id = $2", platform, user_id
            )
            return deleted

        return await self._transaction(body)


async def _migrate(db: asyncpg.Connection) -> None:
    # The lock is held to the end of this transaction: ten instances starting at once queue here, the
    # first migrates, the others then find nothing left to do.
    await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    version = await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    database = await db.fetchval("SELECT current_database()")
    for migration in pending(MIGRATIONS, version, database):
        for statement in migration.statements:
            await db.execute(statement)
        await db.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, now())",
            migration.version,
            migration.description,
        )


async def _insert_ledger(db: asyncpg.Connection, entries: Sequence[LedgerEntry]) -> int:
    # In request-id order, so two batches sharing ids take their unique-index locks in the same order.
    ordered = sorted(entries, key=lambda e: e.request_id)
    rows = [
        (
            e.request_id, e.at, utc_day(e.at), e.platform, e.workspace, e.channel, e.user, e.model,
            e.effort, e.prompt_tokens, e.completion_tokens, e.reasoning_tokens, e.cached_tokens,
            exact_usd(e.usd), e.cost_source, e.ttft_s, e.latency_s, e.outcome,
        )
        for e in ordered
    ]  # fmt: skip
    columns = [list(column) for column in zip(*rows, strict=True)]
    return _count(await db.execute(_INSERT_LEDGER, *columns))


def _count(status: str) -> int:
    """The row count of a command status such as "DELETE 3" or "INSERT 0 5"."""
    return int(status.rsplit(" ", 1)[-1])


def _as_is(value: T) -> T:
    return value


def _totals(row: Sequence[Any]) -> UsageTotals:
    requests, prompt, completion, reasoning, cached, usd = row
    return UsageTotals(requests, prompt, completion, reasoning, cached, normal_usd(usd))
