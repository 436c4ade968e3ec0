"""The schema, as versioned forward-only migrations: the version list every backend shares, and SQLite's.

Each backend has its own statements for the same numbered steps (PostgreSQL's are in
`core.store.postgres_migrations`), so `schema_version()` means the same on both. A database at version
N gets every migration above N applied, in order, in one transaction. Never edit a released migration:
add the next one, to every backend. SQLite's statements are listed one by one because `executescript`
would commit the enclosing transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.store.base import StoreError

# The one list of schema versions; a backend supplies statements for each of them.
VERSIONS: Mapping[int, str] = {
    1: "initial schema",
    2: "monthly usage roll-up",
    3: "every platform message of a multi-part reply",
    4: "owner instance of a streaming reply, and instance leases",
    5: "admin console: settings audit log, indexes for its pages",
    6: "feedback on answers",
}
LATEST_VERSION = max(VERSIONS)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def migrations(statements: Mapping[int, tuple[str, ...]]) -> tuple[Migration, ...]:
    """A backend's migrations, checked to cover exactly the shared versions."""
    if sorted(statements) != sorted(VERSIONS):
        raise AssertionError(f"migrations for versions {sorted(statements)}, expected {sorted(VERSIONS)}")
    return tuple(Migration(version, VERSIONS[version], statements[version]) for version in sorted(VERSIONS))


def pending(all_migrations: Sequence[Migration], version: int, database: str) -> list[Migration]:
    """The migrations a database at `version` still needs, or StoreError if a newer seedbot made it."""
    if version > LATEST_VERSION:
        raise StoreError(
            f"database {database} has schema version {version}, newer than this seedbot knows "
            f"({LATEST_VERSION}); upgrade seedbot"
        )
    return [migration for migration in all_migrations if migration.version > version]


_INITIAL = (
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (platform, workspace, channel, thread)
    )
    """,
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        author_id TEXT NOT NULL,
        author_name TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('complete', 'streaming', 'interrupted', 'error')),
        platform_message_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
    "CREATE INDEX messages_by_platform_id ON messages (platform_message_id)"
    " WHERE platform_message_id IS NOT NULL",
    "CREATE INDEX messages_streaming ON messages (id) WHERE status = 'streaming'",
    "CREATE INDEX messages_by_author ON messages (author_id, role)",
    "CREATE INDEX messages_by_age ON messages (created_at)",
    """
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL,
        mime TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        source TEXT NOT NULL
    )
    """,
    "CREATE INDEX attachments_by_message ON attachments (message_id, position)",
    """
    CREATE TABLE processed_events (
        platform TEXT NOT NULL,
        event_id TEXT NOT NULL,
        processed_at REAL NOT NULL,
        PRIMARY KEY (platform, event_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX processed_events_by_age ON processed_events (processed_at)",
    """
    CREATE TABLE settings (
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('user', 'channel', 'workspace')),
        platform TEXT NOT NULL,
        scope_id TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (name, platform, scope, scope_id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE usage_ledger (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE,
        at REAL NOT NULL,
        day TEXT NOT NULL,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_id TEXT NOT NULL,
        model TEXT NOT NULL,
        effort TEXT,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        usd_nanos INTEGER NOT NULL,
        cost_source TEXT NOT NULL CHECK (cost_source IN ('reported', 'estimated')),
        ttft_s REAL,
        latency_s REAL,
        outcome TEXT NOT NULL
    )
    """,
    "CREATE INDEX usage_ledger_by_workspace ON usage_ledger (platform, workspace, at)",
    "CREATE INDEX usage_ledger_by_user ON usage_ledger (platform, user_id, at)",
    # Reports and budget checks read this daily roll-up, whose size grows with (day, channel, user)
    # combinations rather than with calls; the trigger keeps it exact in the ledger's own transaction.
    """
    CREATE TABLE usage_daily (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        day TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_id TEXT NOT NULL,
        requests INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        usd_nanos INTEGER NOT NULL,
        PRIMARY KEY (platform, workspace, day, channel, user_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX usage_daily_by_user ON usage_daily (platform, workspace, user_id, day)",
    "CREATE INDEX usage_daily_by_channel ON usage_daily (platform, workspace, channel, day)",
    """
    CREATE TRIGGER usage_ledger_rollup AFTER INSERT ON usage_ledger BEGIN
        INSERT INTO usage_daily (platform, workspace, day, channel, user_id, requests, prompt_tokens,
                                 completion_tokens, reasoning_tokens, cached_tokens, usd_nanos)
        VALUES (new.platform, new.workspace, new.day, new.channel, new.user_id, 1, new.prompt_tokens,
                new.completion_tokens, new.reasoning_tokens, new.cached_tokens, new.usd_nanos)
        ON CONFLICT (platform, workspace, day, channel, user_id) DO UPDATE SET
            requests = requests + 1,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cached_tokens = cached_tokens + excluded.cached_tokens,
            usd_nanos = usd_nanos + excluded.usd_nanos;
    END
    """,
    """
    CREATE TABLE budget_reservations (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user_id TEXT NOT NULL,
        amount_nanos INTEGER NOT NULL,
        created_at REAL NOT NULL
    )
    """,
    "CREATE INDEX budget_reservations_by_user"
    " ON budget_reservations (platform, workspace, user_id, created_at)",
)

_ROLLUP_SUMS = """
            requests = requests + excluded.requests,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cached_tokens = cached_tokens + excluded.cached_tokens,
            usd_nanos = usd_nanos + excluded.usd_nanos"""

# All-time reports and monthly budgets read a monthly roll-up: its size grows with months, not days.
_MONTHLY_ROLLUP = (
    """
    CREATE TABLE usage_monthly (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        month TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_id TEXT NOT NULL,
        requests INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        usd_nanos INTEGER NOT NULL,
        PRIMARY KEY (platform, workspace, month, channel, user_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX usage_monthly_by_user ON usage_monthly (platform, workspace, user_id, month)",
    "CREATE INDEX usage_monthly_by_channel ON usage_monthly (platform, workspace, channel, month)",
    """
    INSERT INTO usage_monthly
    SELECT platform, workspace, substr(day, 1, 7), channel, user_id, SUM(requests), SUM(prompt_tokens),
           SUM(completion_tokens), SUM(reasoning_tokens), SUM(cached_tokens), SUM(usd_nanos)
    FROM usage_daily GROUP BY platform, workspace, substr(day, 1, 7), channel, user_id
    """,
    "DROP TRIGGER usage_ledger_rollup",
    f"""
    CREATE TRIGGER usage_ledger_rollup AFTER INSERT ON usage_ledger BEGIN
        INSERT INTO usage_daily (platform, workspace, day, channel, user_id, requests, prompt_tokens,
                                 completion_tokens, reasoning_tokens, cached_tokens, usd_nanos)
        VALUES (new.platform, new.workspace, new.day, new.channel, new.user_id, 1, new.prompt_tokens,
                new.completion_tokens, new.reasoning_tokens, new.cached_tokens, new.usd_nanos)
        ON CONFLICT (platform, workspace, day, channel, user_id) DO UPDATE SET {_ROLLUP_SUMS};
        INSERT INTO usage_monthly (platform, workspace, month, channel, user_id, requests, prompt_tokens,
                                   completion_tokens, reasoning_tokens, cached_tokens, usd_nanos)
        VALUES (new.platform, new.workspace, substr(new.day, 1, 7), new.channel, new.user_id, 1,
                new.prompt_tokens, new.completion_tokens, new.reasoning_tokens, new.cached_tokens,
                new.usd_nanos)
        ON CONFLICT (platform, workspace, month, channel, user_id) DO UPDATE SET {_ROLLUP_SUMS};
    END
    """,
)

# A reply too long for one chat message is posted in parts; a reply to any part continues its conversation.
_MESSAGE_PARTS = (
    """
    CREATE TABLE message_parts (
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        platform_message_id TEXT NOT NULL,
        PRIMARY KEY (message_id, platform_message_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX message_parts_by_platform_id ON message_parts (platform_message_id)",
)

# Several bot instances may share a database: a streaming reply names the instance writing it, and each
# live instance keeps a lease, so a starting instance takes over only the replies of dead ones.
_INSTANCES = (
    "ALTER TABLE messages ADD COLUMN owner TEXT",
    """
    CREATE TABLE instance_leases (
        instance_id TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
)

# The admin console: an audit log of settings changed through it, and indexes for its pages and for the
# usage export (keyset reads of the ledger in time order, problems).
_CONSOLE = (
    """
    CREATE TABLE setting_changes (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        platform TEXT NOT NULL,
        scope_id TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT
    )
    """,
    "CREATE INDEX usage_ledger_by_time ON usage_ledger (at)",
    "CREATE INDEX usage_ledger_failures ON usage_ledger (at) WHERE outcome <> 'ok'",
    "CREATE INDEX messages_unfinished ON messages (id) WHERE status IN ('interrupted', 'error')",
)

# Feedback on answers: one row per person and rated message (a second press replaces the first), with
# what the answer was, so rates per channel and effort need no join with the ledger. No foreign key to
# the reply: retention may purge the reply while its feedback still counts.
_FEEDBACK = (
    """
    CREATE TABLE answer_feedback (
        platform TEXT NOT NULL,
        platform_message_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        reply_id INTEGER,
        rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
        effort TEXT NOT NULL,
        tool_calls INTEGER NOT NULL,
        usd_nanos INTEGER NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (platform, platform_message_id, user_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX answer_feedback_disliked ON answer_feedback (at) WHERE rating = 'down'",
)

MIGRATIONS = migrations(
    {1: _INITIAL, 2: _MONTHLY_ROLLUP, 3: _MESSAGE_PARTS, 4: _INSTANCES, 5: _CONSOLE, 6: _FEEDBACK}
)
