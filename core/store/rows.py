"""What every SQL backend of `Store` shares: money in nano-dollars, row mapping, report and budget logic.

The backends differ in placeholders (`?` against `$1`) and column types (epoch seconds and integer
nano-dollars in SQLite; `timestamptz` and `NUMERIC` in PostgreSQL), so the helpers take those as
arguments instead of each backend repeating the logic around them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from core.models import AttachmentMeta, ConversationKey, MessageStatus
from core.store.base import (
    SETTING_SCOPES,
    BudgetKind,
    BudgetRefusal,
    Feedback,
    FeedbackGroupBy,
    FeedbackRate,
    LedgerEntry,
    ReservationRequest,
    SettingScope,
    StoredMessage,
    UsageFilter,
    UsageGroupBy,
)

NANOS_PER_USD = Decimal(1_000_000_000)
# A hold older than this belongs to a call whose process died before settling; it stops counting.
RESERVATION_TTL = timedelta(hours=1)

# Both backends name these columns alike; `m` is messages, `c` conversations.
MESSAGE_COLUMNS = (
    "m.id, c.platform, c.workspace, c.channel, c.thread, m.role, m.author_id, m.author_name, m.text,"
    " m.status, m.platform_message_id, m.created_at"
)
ATTACHMENT_COLUMNS = "message_id, kind, mime, size, sha256, name, source"
GROUP_COLUMNS: dict[UsageGroupBy, str] = {"user": "user_id", "channel": "channel", "workspace": "workspace"}

Placeholder = Callable[[int], str]  # 1-based parameter number -> its SQL placeholder


def ledger_columns(usd: str) -> str:
    """The ledger columns `ledger_entry` reads, the backend's money column named `usd`; `at` comes last,
    as the keyset of `walk_ledger` needs."""
    return (
        "request_id, platform, workspace, channel, user_id, model, effort, prompt_tokens,"
        f" completion_tokens, reasoning_tokens, cached_tokens, {usd}, cost_source, ttft_s, latency_s,"
        " outcome, at"
    )


def to_nanos(usd: Decimal, rounding: str = ROUND_HALF_EVEN) -> int:
    return int((usd * NANOS_PER_USD).to_integral_value(rounding))


def from_nanos(nanos: int) -> Decimal:
    return normal_usd(Decimal(nanos) / NANOS_PER_USD)


def exact_usd(usd: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """`usd` rounded to the nano-dollar, the precision every backend stores."""
    return from_nanos(to_nanos(usd, rounding))


def normal_usd(usd: Decimal) -> Decimal:
    # One spelling per amount whatever the column's scale: 0.001625000 and 0.001625 read back alike.
    return usd.normalize() if usd else Decimal(0)


def utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def key_params(key: ConversationKey) -> tuple[str, str, str, str]:
    return (key.platform, key.workspace, key.channel, key.thread)


def is_conversation(placeholder: Placeholder, first: int = 1) -> str:
    """The WHERE clause matching conversation `c` to `key_params(key)` at parameters first..first+3."""
    columns = ("platform", "workspace", "channel", "thread")
    return " AND ".join(f"c.{column} = {placeholder(first + n)}" for n, column in enumerate(columns))


def stored_messages(
    rows: Iterable[Sequence[Any]],
    attachment_rows: Iterable[Sequence[Any]],
    created_at: Callable[[Any], datetime],
) -> list[StoredMessage]:
    """Messages from rows of `MESSAGE_COLUMNS` and their attachments from rows of `ATTACHMENT_COLUMNS`
    (ordered by position); `created_at` turns the backend's stored time into a UTC datetime."""
    attachments: dict[int, list[AttachmentMeta]] = {}
    for message_id, kind, mime, size, sha256, name, source in attachment_rows:
        attachments.setdefault(message_id, []).append(AttachmentMeta(kind, mime, size, sha256, name, source))
    return [
        StoredMessage(
            id=row[0],
            key=ConversationKey(row[1], row[2], row[3], row[4]),
            role=row[5],
            author_id=row[6],
            author_name=row[7],
            text=row[8],
            status=row[9],
            platform_message_id=row[10],
            attachments=tuple(attachments.get(row[0], ())),
            created_at=created_at(row[11]),
        )
        for row in rows
    ]


def attachment_rows(message_id: int, attachments: Sequence[AttachmentMeta]) -> list[tuple[Any, ...]]:
    """Parameters for `INSERT INTO attachments (message_id, position, kind, mime, size, sha256, name,
    source)`, one tuple per attachment, in order."""
    return [
        (message_id, position, a.kind, a.mime, a.size, a.sha256, a.name, a.source)
        for position, a in enumerate(attachments)
    ]


def message_changes(
    text: str | None, status: MessageStatus | None, platform_message_id: str | None
) -> list[tuple[str, str]]:
    """The (column, value) pairs an `update_message` call changes: the arguments that are not None."""
    changes = {"text": text, "status": status, "platform_message_id": platform_message_id}
    return [(column, value) for column, value in changes.items() if value is not None]


def _filter_clauses(where: UsageFilter, placeholder: Placeholder, params: list[Any]) -> list[str]:
    """The roll-up WHERE clauses of a usage filter, appending their parameters to `params`."""
    params.append(where.platform)
    clauses = [f"platform = {placeholder(len(params))}"]
    for column, value in (
        ("workspace", where.workspace),
        ("channel", where.channel),
        ("user_id", where.user),
    ):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} = {placeholder(len(params))}")
    return clauses


def usage_query(
    where: UsageFilter, since: date | None, placeholder: Placeholder, day: Callable[[date], Any]
) -> tuple[str, str, list[Any]]:
    """The roll-up table to read (monthly for all time, daily for a period), its WHERE clause and
    parameters; `day` turns a date into the backend's stored form of a day."""
    params: list[Any] = []
    clauses = _filter_clauses(where, placeholder, params)
    if since is None:
        return "usage_monthly", " AND ".join(clauses), params
    params.append(day(since))
    clauses.append(f"day >= {placeholder(len(params))}")
    return "usage_daily", " AND ".join(clauses), params


def range_condition(
    where: UsageFilter | None,
    since: date | None,
    until: date | None,
    placeholder: Placeholder,
    day: Callable[[date], Any],
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) over the daily roll-up for a filter (None: every platform)
    and UTC days `since`..`until` (both included; None: unbounded); without days it fits the monthly
    roll-up too. `day` turns a date into the backend's stored form of a day."""
    params: list[Any] = []
    # Both roll-ups' keys start (platform, workspace, period): naming the workspaces there are (few,
    # read from the small monthly roll-up) lets the database seek one key range per workspace instead
    # of visiting every row of the period through a secondary index.
    if where is None:
        clauses = ["(platform, workspace) IN (SELECT DISTINCT platform, workspace FROM usage_monthly)"]
    else:
        clauses = _filter_clauses(where, placeholder, params)
        if where.workspace is None:
            params.append(where.platform)
            clauses.append(
                "workspace IN (SELECT DISTINCT workspace FROM usage_monthly"
                f" WHERE platform = {placeholder(len(params))})"
            )
    for operator, bound in ((">=", since), ("<=", until)):
        if bound is not None:
            params.append(day(bound))
            clauses.append(f"day {operator} {placeholder(len(params))}")
    return " AND ".join(clauses), params


def rollup_for(since: date | None, until: date | None) -> str:
    """The roll-up table a `range_condition` over these days reads: all time reads the monthly one,
    about 30 times smaller than the daily one."""
    return "usage_monthly" if since is None and until is None else "usage_daily"


def most_specific(rows: Iterable[Sequence[str]]) -> tuple[str, SettingScope] | None:
    """From the (scope, value) rows of one setting, the value of the most specific scope and that scope."""
    by_scope = {scope: value for scope, value in rows}
    return next(((by_scope[scope], scope) for scope in SETTING_SCOPES if scope in by_scope), None)


def budget_refusal(
    request: ReservationRequest,
    amount: Decimal,
    user_spent: Decimal,
    user_held: Decimal,
    workspace_spent: Decimal,
    workspace_held: Decimal,
) -> BudgetRefusal | None:
    """The first budget that holding `amount` (the request's, rounded as stored) would take past its
    limit, given what is spent and held today (user) and this month (workspace); None when every limit
    (a None limit is not checked) leaves room for it."""
    checks: tuple[tuple[BudgetKind, Decimal | None, Decimal, Decimal], ...] = (
        ("user_daily", request.user_daily_limit, user_spent, user_held),
        ("workspace_monthly", request.workspace_monthly_limit, workspace_spent, workspace_held),
    )
    for budget, limit, spent, held in checks:
        if limit is not None and spent + held + amount > exact_usd(limit):
            return BudgetRefusal(budget, limit, spent, held, amount)
    return None


def ledger_entry(
    row: Sequence[Any], usd: Callable[[Any], Decimal], at: Callable[[Any], datetime]
) -> LedgerEntry:
    """A ledger row read with `ledger_columns`; `usd` and `at` turn the backend's stored money and time
    into dollars and a UTC datetime."""
    *fields, money, source, ttft, latency, outcome, stored_at = row
    return LedgerEntry(
        *fields, usd=usd(money), cost_source=source, ttft_s=ttft, latency_s=latency, outcome=outcome,
        at=at(stored_at),
    )  # fmt: skip


def ledger_window(since: date | None, until: date | None) -> tuple[datetime, datetime]:
    """The instants [start, end) covering UTC days `since`..`until` (both included); an open side is the
    earliest or latest instant there is, so every backend runs one query shape."""
    start = datetime.combine(since, time(), UTC) if since is not None else datetime.min.replace(tzinfo=UTC)
    end = (
        datetime.combine(until + timedelta(days=1), time(), UTC)
        if until is not None
        else datetime.max.replace(tzinfo=UTC)
    )
    return start, end


LedgerPage = Callable[[Any, int, int], Awaitable[Sequence[Sequence[Any]]]]


async def walk_ledger(read_page: LedgerPage, start: Any, batch: int) -> AsyncIterator[Sequence[Any]]:
    """Every row `read_page(after_at, after_id, limit)` returns, page after page: rows of
    (id, *`ledger_columns`) in (at, id) order past the keyset (after_at, after_id), at most `limit`.

    Each page starts where the last one ended instead of skipping rows as OFFSET would, so a page costs
    the same however far into a big ledger it is. The first page starts at (`start`, -1): ids are
    positive, so rows at exactly `start` are included."""
    limit = max(batch, 1)
    after: tuple[Any, int] = (start, -1)
    while True:
        rows = await read_page(*after, limit)
        for row in rows:
            yield row[1:]
        if len(rows) < limit:
            return
        after = (rows[-1][-1], rows[-1][0])


# --- feedback on answers ---------------------------------------------------------------------------

# What a channel's or an effort's rate is grouped by.
FEEDBACK_KEYS: dict[FeedbackGroupBy, tuple[str, ...]] = {
    "channel": ("platform", "workspace", "channel"),
    "effort": ("effort",),
}


def feedback_columns(usd: str) -> str:
    """The columns `feedback` reads, in `Feedback`'s order, the backend's money column named `usd`."""
    return (
        "platform, workspace, channel, platform_message_id, user_id, rating, effort, tool_calls,"
        f" {usd}, reply_id, at"
    )


def feedback(row: Sequence[Any], usd: Callable[[Any], Decimal], at: Callable[[Any], datetime]) -> Feedback:
    *fields, money, reply_id, stored_at = row
    return Feedback(*fields, usd=usd(money), reply_id=reply_id, at=at(stored_at))


def feedback_rates_query(by: FeedbackGroupBy) -> str:
    keys = ", ".join(FEEDBACK_KEYS[by])
    return (
        f"SELECT {keys}, SUM(CASE WHEN rating = 'up' THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN rating = 'down' THEN 1 ELSE 0 END) FROM answer_feedback"
        f" GROUP BY {keys} ORDER BY COUNT(*) DESC, {keys}"
    )


def feedback_rate(by: FeedbackGroupBy, row: Sequence[Any]) -> FeedbackRate:
    *keys, up, down = row
    platform, workspace, key = ["", "", *keys][-3:]
    return FeedbackRate(platform, workspace, key, int(up), int(down))
