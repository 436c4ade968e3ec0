"""The store: everything the core keeps between restarts, behind one narrow async interface.

`Store` is what services may ask; a backend (SQLite or PostgreSQL) implements all of it and passes the
contract suite in `tests/core/store/`. Conventions every backend keeps:

- Times are timezone-aware UTC `datetime`s; "today" and "this month" are UTC calendar days/months.
- Money is `Decimal` US dollars, stored exactly to the nano-dollar.
- Every change that touches more than one row happens in one transaction; a crash leaves either all
  of it or none of it.
- Errors the database raises (locked, corrupt, unwritable) surface as `StoreError`, whose `str()` is one
  line fit for an operator, never a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal, Protocol

from core.config import EFFORTS
from core.models import AttachmentMeta, ConversationKey, MessageStatus, Platform, Role

SettingScope = Literal["user", "channel", "workspace"]
# Most specific first; a per-request override (e.g. `Turn.effort`) beats all of them and is never stored.
SETTING_SCOPES: tuple[SettingScope, ...] = ("user", "channel", "workspace")
SettingName = Literal[
    "effort", "system_prompt", "user_daily_budget_usd", "workspace_monthly_budget_usd", "tools_disabled"
]
SETTING_NAMES: tuple[SettingName, ...] = (
    "effort",
    "system_prompt",
    "user_daily_budget_usd",
    "workspace_monthly_budget_usd",
    "tools_disabled",
)
# The tools switched off in a channel or workspace: a comma list of tool names, or NO_TOOLS for an
# explicit empty list (a channel that turns back on what its workspace turned off).
TOOLS_DISABLED: SettingName = "tools_disabled"
NO_TOOLS = "none"
TOOL_NAME_MAX_CHARS = 200
# A budget set to this at run time overrides the environment's limit with "no limit".
UNLIMITED = "unlimited"
SYSTEM_PROMPT_MAX_CHARS = 8000

CostSource = Literal["reported", "estimated"]
UsageGroupBy = Literal["user", "channel", "workspace"]
BudgetKind = Literal["user_daily", "workspace_monthly"]
Rating = Literal["up", "down"]
FeedbackGroupBy = Literal["channel", "effort"]


def utc_now() -> datetime:
    return datetime.now(UTC)


# What people are told while the database does not answer (nothing they asked was lost or done).
STORAGE_UNAVAILABLE = "Storage is unavailable right now; please try again shortly."


class StoreError(Exception):
    """The database cannot do what was asked; `str()` is one printable line naming the cause."""


class SettingError(ValueError):
    """A setting value that is not allowed; `str()` is fit to show the person who typed it."""


def check_setting_name(name: str) -> None:
    if name not in SETTING_NAMES:
        raise SettingError(f"unknown setting {name!r}; known settings: {', '.join(SETTING_NAMES)}")


def checked_setting(name: str, value: str | None, scope: str) -> str | None:
    """What `set_setting(name, value, scope, ...)` stores: the canonical value, or None to clear it.
    Raises SettingError for a bad name or value, ValueError for an unknown scope (a programming error)."""
    if scope not in SETTING_SCOPES:
        raise ValueError(f"unknown setting scope {scope!r}")
    check_setting_name(name)
    return None if value is None else normalise_setting(name, value)


def normalise_setting(name: str, value: str) -> str:
    """The canonical stored form of `value` for setting `name`, or SettingError saying what is expected."""
    check_setting_name(name)
    text = value.strip()
    if name == "effort":
        lowered = text.lower()
        if lowered not in EFFORTS:
            raise SettingError(f"effort must be one of {', '.join(EFFORTS)} (got {text!r})")
        return lowered
    if name == TOOLS_DISABLED:
        names = tool_names(text)
        if any(len(tool) > TOOL_NAME_MAX_CHARS for tool in names):
            raise SettingError(f"a tool name is at most {TOOL_NAME_MAX_CHARS} characters")
        return ",".join(names) or NO_TOOLS
    if name == "system_prompt":
        if not text:
            raise SettingError("the system prompt cannot be empty")
        if len(text) > SYSTEM_PROMPT_MAX_CHARS:
            raise SettingError(f"the system prompt is limited to {SYSTEM_PROMPT_MAX_CHARS:,} characters")
        return text
    # What is left are the budgets.
    if text.lower() in (UNLIMITED, "none", "off"):
        return UNLIMITED
    try:
        amount = Decimal(text.removeprefix("$"))
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0:
        raise SettingError(f"a budget is an amount in US dollars such as 0.50, or {UNLIMITED!r}")
    return str(amount)


def tool_names(value: str) -> list[str]:
    """The names in a `tools_disabled` value, sorted, each once."""
    names = {name.strip() for name in value.split(",")} - {"", NO_TOOLS}
    return sorted(names)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    key: ConversationKey
    role: Role
    author_id: str
    author_name: str
    text: str
    status: MessageStatus
    platform_message_id: str | None
    attachments: tuple[AttachmentMeta, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One model call, as it is accounted for. `request_id` is unique: recording it twice counts once."""

    request_id: str
    platform: Platform
    workspace: str
    channel: str
    user: str
    model: str
    effort: str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    usd: Decimal
    cost_source: CostSource
    ttft_s: float | None
    latency_s: float | None
    outcome: str  # "ok", "error", "interrupted", "cancelled", ...
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which ledger rows a report covers; None means "any"."""

    platform: Platform
    workspace: str | None = None
    channel: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageGroup:
    key: str  # the user, channel or workspace id the totals belong to
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One platform's totals on one UTC day."""

    day: date
    platform: Platform
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class ScopedUsage:
    """Totals of one workspace, channel or user, with where it lives: ids are only unique within a
    platform, and a channel or user page needs its workspace."""

    platform: Platform
    workspace: str
    key: str  # the workspace, channel or user id the totals belong to
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class Feedback:
    """One person's 👍 or 👎 on one answer, with what the answer was (its effort, tools and cost)."""

    platform: Platform
    workspace: str
    channel: str
    platform_message_id: str  # the reply's message that carries the buttons
    user: str  # who pressed
    rating: Rating
    effort: str
    tool_calls: int
    usd: Decimal
    reply_id: int | None = None  # the stored reply (it may be purged by retention before the press)
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class FeedbackRate:
    """The presses on the answers of one channel (`platform`, `workspace`, `key`) or of one effort
    (`key`, the platform and workspace "")."""

    platform: str
    workspace: str
    key: str
    up: int
    down: int

    @property
    def share_up(self) -> float:
        return self.up / (self.up + self.down)


@dataclass(frozen=True, slots=True)
class StoredSetting:
    name: str
    scope: SettingScope
    platform: Platform
    scope_id: str
    value: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SettingChange:
    """Who changed a setting and how, for the audit log; a None value means "not set" (the default)."""

    actor: str
    name: str
    scope: SettingScope
    platform: Platform
    scope_id: str
    old: str | None
    new: str | None
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """Hold `amount` against the budgets that apply; a None limit is not checked."""

    platform: Platform
    workspace: str
    user: str
    amount: Decimal
    user_daily_limit: Decimal | None
    workspace_monthly_limit: Decimal | None
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Reservation:
    id: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class BudgetRefusal:
    """Why a reservation was refused: `spent + reserved + amount` would pass `limit`."""

    budget: BudgetKind
    limit: Decimal
    spent: Decimal  # settled within the budget's period
    reserved: Decimal  # held by calls still in flight
    amount: Decimal


class Store(Protocol):
    """What the core may ask of persistent state. Open one with `core.store.open_store(settings)`."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        """The version of the schema the database is at (migrations are forward-only)."""
        ...

    # --- platform events -----------------------------------------------------------------------------

    async def claim_event(self, platform: Platform, event_id: str, *, at: datetime | None = None) -> bool:
        """True the first time (platform, event_id) is claimed, False for every redelivery, across restarts
        and processes."""
        ...

    async def purge_events(self, before: datetime) -> int:
        """Forget event ids claimed before `before` (platforms stop redelivering after minutes)."""
        ...

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
        """Append a message (and its attachment metadata) to the conversation `key`; returns its id.
        `owner` names the bot instance writing a streaming reply (see `recover_streaming`)."""
        ...

    async def update_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        status: MessageStatus | None = None,
        platform_message_id: str | None = None,
    ) -> bool:
        """Change the given fields; False if no such message (e.g. it was forgotten meanwhile)."""
        ...

    async def add_message_parts(self, message_id: int, platform_message_ids: Sequence[str]) -> None:
        """Remember every platform message a stored message was posted as (a long reply in parts), so
        `find_by_platform_message` finds it by any of them. Known ids are ignored."""
        ...

    async def conversation(self, key: ConversationKey, limit: int = 200) -> list[StoredMessage]:
        """The last `limit` messages of the conversation, oldest to newest, with their attachments."""
        ...

    async def has_conversation(self, key: ConversationKey) -> bool: ...

    async def find_by_platform_message(
        self, platform: Platform, platform_message_id: str
    ) -> StoredMessage | None:
        """The stored message that a platform message id belongs to (to continue a reply chain): its own
        id or the id of any of its parts."""
        ...

    async def recover_streaming(self, self_instance: str | None = None) -> list[StoredMessage]:
        """Mark replies left `streaming` by a dead instance as `interrupted` and return them (already
        updated), so the adapters can fix the visible messages. Call once at start-up, before taking new
        work.

        A reply is taken over when its owner has no live lease (see `heartbeat`), when it has no owner
        (written by a seedbot that did not record owners, or by a single instance that does not keep
        leases), or when its owner is `self_instance`: an instance restarting under the same id is that
        owner's successor, even if the dead predecessor's lease has not run out yet. Replies of other
        live instances are left alone. With no leases at all (one instance, the default) every reply
        left streaming is taken over."""
        ...

    # --- instance leases -----------------------------------------------------------------------------

    async def heartbeat(self, instance_id: str, ttl_s: float) -> None:
        """Take or renew the lease of a running instance, live for `ttl_s` seconds from now."""
        ...

    async def live_instances(self) -> list[str]:
        """The ids of instances whose lease has not expired, sorted."""
        ...

    async def release_instance(self, instance_id: str) -> None:
        """Give up an instance's lease (a clean shutdown), so others need not wait for it to expire."""
        ...

    # --- settings by scope ---------------------------------------------------------------------------

    async def set_setting(
        self, name: str, value: str | None, scope: SettingScope, platform: Platform, scope_id: str
    ) -> None:
        """Set (or with None clear) a setting at one scope. Raises SettingError for a bad name/value."""
        ...

    async def get_setting(
        self, name: str, scope: SettingScope, platform: Platform, scope_id: str
    ) -> str | None:
        """The value set at exactly this scope, if any."""
        ...

    async def resolve_setting(
        self,
        name: str,
        platform: Platform,
        workspace: str,
        channel: str | None = None,
        user: str | None = None,
    ) -> tuple[str, SettingScope] | None:
        """The most specific stored value, user > channel > workspace, with the scope it was set at
        (people are told where a setting comes from); None means "use the default"."""
        ...

    async def list_settings(self, *names: str) -> list[StoredSetting]:
        """Every stored setting with one of `names` (none given: every setting), at every scope, ordered
        by name, platform, scope and id."""
        ...

    async def record_setting_change(self, change: SettingChange) -> None:
        """Append a change to the audit log (the change itself is made with `set_setting`)."""
        ...

    async def setting_changes(self, limit: int = 50) -> list[SettingChange]:
        """The audit log, newest first."""
        ...

    # --- usage ledger and reports --------------------------------------------------------------------

    async def record_usage(self, *entries: LedgerEntry) -> int:
        """Add ledger rows in one transaction; returns how many were new (a known request_id is skipped)."""
        ...

    async def usage_totals(self, where: UsageFilter, since: date | None = None) -> UsageTotals:
        """Totals over the rows matching `where` from UTC day `since` (None: all time)."""
        ...

    async def usage_breakdown(
        self, where: UsageFilter, by: UsageGroupBy, since: date | None = None, limit: int = 10
    ) -> list[UsageGroup]:
        """Totals per user, channel or workspace, biggest spender first, at most `limit` groups."""
        ...

    def iter_ledger(
        self, since: date | None = None, until: date | None = None, *, batch: int = 5000
    ) -> AsyncIterator[LedgerEntry]:
        """Every ledger row of the UTC days `since`..`until` (both included; None: unbounded), oldest
        first, read `batch` rows at a time by keyset (never OFFSET), so memory stays flat and each batch
        costs the same however far into a big ledger it is."""
        ...

    async def usage_by_day(
        self, since: date | None = None, until: date | None = None, where: UsageFilter | None = None
    ) -> list[DailyUsage]:
        """Totals per UTC day and platform over `since`..`until` (both included), oldest first; days
        without usage are left out. `where` None covers every platform."""
        ...

    async def usage_groups(
        self,
        by: UsageGroupBy,
        since: date | None = None,
        until: date | None = None,
        where: UsageFilter | None = None,
        limit: int | None = None,
    ) -> list[ScopedUsage]:
        """Totals per workspace, channel or user across platforms (`where` None) or within a filter,
        over `since`..`until` (both included), biggest spender first; `limit` None returns them all."""
        ...

    async def failed_calls(self, limit: int = 50) -> list[LedgerEntry]:
        """The latest ledger rows whose outcome is not "ok" (errors, interruptions, stops), newest first."""
        ...

    async def unfinished_replies(self, limit: int = 50) -> list[StoredMessage]:
        """The latest replies stored as interrupted or error (restarts, undelivered final text), newest
        first."""
        ...

    # --- feedback on answers ----------------------------------------------------------------------------

    async def record_feedback(self, feedback: Feedback) -> None:
        """Keep a press; a later press by the same person on the same message replaces it."""
        ...

    async def feedback_rates(self, by: FeedbackGroupBy) -> list[FeedbackRate]:
        """The presses per channel or per effort, most pressed first."""
        ...

    async def disliked_answers(self, limit: int = 50) -> list[Feedback]:
        """The latest 👎 presses, newest first."""
        ...

    # --- budgets -------------------------------------------------------------------------------------

    async def reserve_budget(self, request: ReservationRequest) -> Reservation | BudgetRefusal:
        """Atomically (also across processes) check that settled spend + amounts held by calls in flight
        + `request.amount` stay within each limit, and if so hold the amount. Holds older than an hour
        are treated as abandoned by a crashed process and no longer count."""
        ...

    async def settle_reservation(self, reservation_id: int, entry: LedgerEntry | None) -> None:
        """Release the hold and, in the same transaction, record what the call really cost (None: the
        call never happened). Settling twice is harmless."""
        ...

    # --- retention -----------------------------------------------------------------------------------

    async def purge_messages(self, before: datetime) -> int:
        """Delete messages created before `before` (and conversations left empty); returns how many."""
        ...

    async def forget_conversation(self, key: ConversationKey) -> int:
        """Delete one conversation with all its messages; returns how many messages went."""
        ...

    async def forget_user(self, platform: Platform, user_id: str) -> int:
        """Delete one person's data: every conversation where they were the only human, their own messages
        in shared ones, their user-scope settings and their feedback presses. Ledger rows stay (they
        enforce budgets and carry no message content). Returns how many messages went."""
        ...
