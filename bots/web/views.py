"""What each console page shows, gathered from the service and its store (no HTML here).

The console changes settings only through `core.commands.run_command`, as an admin in the edited scope,
so a change made here means exactly what the same change made with `/seed budget` means, and a value
the command refuses is refused here with the same words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from bots.web.svg import Chart, stacked_bars
from core.charts import CHART_DAYS, day_range
from core.commands import (
    RESET,
    Budget,
    Caller,
    Dialect,
    Prompt,
    Refusal,
    ReplyCommand,
    markdown_quote,
    plain,
    run_command,
)
from core.commands import Effort as EffortCommand
from core.costs import BudgetLimits
from core.llm.types import Effort
from core.metrics import Metrics
from core.models import Platform
from core.store.base import (
    BudgetKind,
    DailyUsage,
    Feedback,
    FeedbackRate,
    LedgerEntry,
    ScopedUsage,
    SettingChange,
    SettingScope,
    Store,
    StoredMessage,
    UsageFilter,
    UsageTotals,
)

if TYPE_CHECKING:
    from core.service import ChatService

BUSIEST = 10
BUDGET_USERS_SHOWN = 20
PROBLEMS_SHOWN = 100
DISLIKED_SHOWN = 100
BUDGET_KINDS: tuple[BudgetKind, ...] = ("user_daily", "workspace_monthly")


# The console offers no typed commands (so no syntax) and renders replies as plain text.
CONSOLE_DIALECT = Dialect(syntax=lambda spec: None, bold=plain, quote=markdown_quote)


async def _run_as_admin(
    service: ChatService, command: ReplyCommand, *, platform: Platform, workspace: str, channel: str = ""
) -> Refusal | None:
    """Run `command` as an admin in the edited scope; the refusal text if it changed nothing. The
    console edits no person's own settings, so the caller is nobody in particular."""
    caller = Caller(platform, workspace, channel, user="", admin=True)
    reply = await run_command(service, caller, command, CONSOLE_DIALECT)
    return reply if isinstance(reply, Refusal) else None


def add(totals: Sequence[UsageTotals]) -> UsageTotals:
    return UsageTotals(
        requests=sum(t.requests for t in totals),
        prompt_tokens=sum(t.prompt_tokens for t in totals),
        completion_tokens=sum(t.completion_tokens for t in totals),
        reasoning_tokens=sum(t.reasoning_tokens for t in totals),
        cached_tokens=sum(t.cached_tokens for t in totals),
        usd=sum((t.usd for t in totals), Decimal(0)),
    )


@dataclass(frozen=True, slots=True)
class TokenKinds:
    """Tokens split into kinds that do not overlap (the API counts cached within prompt, reasoning
    within completion)."""

    input: int
    cached: int
    reasoning: int
    output: int

    @classmethod
    def of(cls, totals: UsageTotals) -> TokenKinds:
        return cls(
            input=totals.prompt_tokens - totals.cached_tokens,
            cached=totals.cached_tokens,
            reasoning=totals.reasoning_tokens,
            output=totals.completion_tokens - totals.reasoning_tokens,
        )


def _chart(days: Sequence[DailyUsage], first: date, last: date, by_platform: bool = True) -> Chart:
    series: dict[str, dict[date, Decimal]] = {}
    for day in days:
        if first <= day.day <= last:
            name = day.platform if by_platform else "spend"
            per_day = series.setdefault(name, {})
            per_day[day.day] = per_day.get(day.day, Decimal(0)) + day.totals.usd
    return stacked_bars(day_range(first, (last - first).days + 1), series)


def _between(days: Sequence[DailyUsage], first: date, last: date) -> UsageTotals:
    return add([day.totals for day in days if first <= day.day <= last])


@dataclass(frozen=True, slots=True)
class Overview:
    chart: Chart
    today: UsageTotals
    month: UsageTotals
    last_30_days: UsageTotals
    tokens: TokenKinds
    channels: list[ScopedUsage]
    users: list[ScopedUsage]


async def overview(store: Store, today: date) -> Overview:
    first = today - timedelta(days=CHART_DAYS - 1)
    month_start = today.replace(day=1)
    days = await store.usage_by_day(min(first, month_start), today)
    window = _between(days, first, today)
    return Overview(
        chart=_chart(days, first, today),
        today=_between(days, today, today),
        month=_between(days, month_start, today),
        last_30_days=window,
        tokens=TokenKinds.of(window),
        channels=await store.usage_groups("channel", first, today, limit=BUSIEST),
        users=await store.usage_groups("user", first, today, limit=BUSIEST),
    )


@dataclass(frozen=True, slots=True)
class ScopePage:
    kind: str  # "channel" or "user"
    platform: str
    workspace: str
    id: str
    chart: Chart
    today: UsageTotals
    month: UsageTotals
    last_30_days: UsageTotals
    all_time: UsageTotals
    tokens: TokenKinds
    related: list[ScopedUsage]  # a channel's busiest users, a user's busiest channels


async def scope_page(
    store: Store, kind: str, platform: str, workspace: str, scope_id: str, today: date
) -> ScopePage:
    """A channel's or a user's own page (`kind` "channel" or "user")."""
    first = today - timedelta(days=CHART_DAYS - 1)
    month_start = today.replace(day=1)
    if kind == "channel":
        where = UsageFilter(platform, workspace, channel=scope_id)
    else:
        where = UsageFilter(platform, workspace, user=scope_id)
    days = await store.usage_by_day(min(first, month_start), today, where)
    window = _between(days, first, today)
    return ScopePage(
        kind=kind,
        platform=platform,
        workspace=workspace,
        id=scope_id,
        chart=_chart(days, first, today, by_platform=False),
        today=_between(days, today, today),
        month=_between(days, month_start, today),
        last_30_days=window,
        all_time=await store.usage_totals(where),
        tokens=TokenKinds.of(window),
        related=await store.usage_groups(
            "user" if kind == "channel" else "channel", first, today, where, limit=BUSIEST
        ),
    )


# --- budgets -----------------------------------------------------------------------------------------

_BUDGET_SETTINGS = ("user_daily_budget_usd", "workspace_monthly_budget_usd")


@dataclass(frozen=True, slots=True)
class UserToday:
    user: str
    spent: Decimal


@dataclass(frozen=True, slots=True)
class WorkspaceBudgets:
    platform: str
    workspace: str
    limits: BudgetLimits
    own: dict[str, str]  # kind -> the value set for this workspace (absent: the environment's)
    month_spent: Decimal
    users_today: list[UserToday]


@dataclass(frozen=True, slots=True)
class BudgetsPage:
    default_user_daily: Decimal | None
    default_workspace_monthly: Decimal | None
    workspaces: list[WorkspaceBudgets]
    changes: list[SettingChange]


async def budgets_page(service: ChatService, today: date) -> BudgetsPage:
    store = service.store
    own: dict[tuple[str, str], dict[str, str]] = {}
    for setting in await store.list_settings(*_BUDGET_SETTINGS):
        if setting.scope == "workspace":
            kind = setting.name.removesuffix("_budget_usd")
            own.setdefault((setting.platform, setting.scope_id), {})[kind] = setting.value
    known = {(group.platform, group.workspace) for group in await store.usage_groups("workspace")}
    workspaces = []
    for platform, workspace in sorted(known | set(own)):
        where = UsageFilter(platform, workspace)
        users = await store.usage_groups("user", today, today, where, limit=BUDGET_USERS_SHOWN)
        workspaces.append(
            WorkspaceBudgets(
                platform=platform,
                workspace=workspace,
                limits=await service.budgets.limits(platform, workspace),
                own=own.get((platform, workspace), {}),
                month_spent=(await store.usage_totals(where, today.replace(day=1))).usd,
                users_today=[UserToday(group.key, group.totals.usd) for group in users],
            )
        )
    return BudgetsPage(
        default_user_daily=service.settings.user_daily_budget_usd,
        default_workspace_monthly=service.settings.workspace_monthly_budget_usd,
        workspaces=workspaces,
        changes=await store.setting_changes(),
    )


async def set_budget(
    service: ChatService,
    actor: str,
    kind: BudgetKind,
    amount: str | None,
    *,
    platform: Platform,
    workspace: str,
) -> Refusal | None:
    """Change a workspace's budget (`amount` None: back to the environment's) as `/seed budget` would,
    and log the change; the command's refusal text if the amount is bad (then nothing changed)."""
    name = f"{kind}_budget_usd"
    old = await service.store.get_setting(name, "workspace", platform, workspace)
    refusal = await _run_as_admin(
        service, Budget(kind, RESET if amount is None else amount), platform=platform, workspace=workspace
    )
    await _audit(service.store, actor, name, "workspace", platform, workspace, old)
    return refusal


async def _audit(
    store: Store, actor: str, name: str, scope: SettingScope, platform: str, scope_id: str, old: str | None
) -> None:
    """Log a change made through the console, as the store now holds it (normalised), if it changed."""
    new = await store.get_setting(name, scope, platform, scope_id)
    if new != old:
        await store.record_setting_change(SettingChange(actor, name, scope, platform, scope_id, old, new))


# --- channels -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    platform: str
    workspace: str  # "" when the channel has settings but no usage yet
    channel: str
    effort: str | None  # set for this channel; None: from the workspace or the default
    system_prompt: str | None  # this channel's own; None: SEEDBOT_SYSTEM_PROMPT


@dataclass(frozen=True, slots=True)
class ChannelsPage:
    default_effort: str
    default_system_prompt: str
    channels: list[ChannelSettings]
    allowlists: list[tuple[str, tuple[str, ...]]]  # (setting name, ids)


async def channels_page(service: ChatService) -> ChannelsPage:
    store, settings = service.store, service.settings
    own: dict[tuple[str, str], dict[str, str]] = {}
    for setting in await store.list_settings("effort", "system_prompt"):
        if setting.scope == "channel":
            own.setdefault((setting.platform, setting.scope_id), {})[setting.name] = setting.value
    workspaces = {(g.platform, g.key): g.workspace for g in await store.usage_groups("channel")}
    channels = [
        ChannelSettings(
            platform,
            workspaces.get((platform, channel), ""),
            channel,
            own.get((platform, channel), {}).get("effort"),
            own.get((platform, channel), {}).get("system_prompt"),
        )
        for platform, channel in sorted(set(workspaces) | set(own))
    ]
    allowlists = [
        ("SLACK_ALLOWED_CHANNELS", settings.slack_allowed_channels),
        ("SLACK_ALLOWED_USERS", settings.slack_allowed_users),
        ("DISCORD_ALLOWED_GUILDS", settings.discord_allowed_guilds),
        ("DISCORD_ALLOWED_CHANNELS", settings.discord_allowed_channels),
        ("DISCORD_ALLOWED_ROLES", settings.discord_allowed_roles),
        ("SEEDBOT_ADMINS", settings.admins),
    ]
    return ChannelsPage(settings.default_effort, settings.system_prompt, channels, allowlists)


async def set_channel(
    service: ChatService,
    actor: str,
    *,
    platform: Platform,
    workspace: str,
    channel: str,
    effort: Effort | None,
    system_prompt: str | None,
) -> Refusal | None:
    """Set a channel's effort and system prompt (None: back to the default) as `/seed effort … channel`
    and `/seed prompt` would, and log what changed; the refusal text if a value is not allowed (then
    nothing was changed)."""
    store = service.store
    old_effort = await store.get_setting("effort", "channel", platform, channel)
    old_prompt = await store.get_setting("system_prompt", "channel", platform, channel)
    scope = {"platform": platform, "workspace": workspace, "channel": channel}
    # The prompt first: it is the value that can be refused (too long), and refusing it must leave the
    # effort as it was too. An admin's channel effort of a level the form checked is never refused.
    refusal = await _run_as_admin(service, Prompt(RESET if system_prompt is None else system_prompt), **scope)
    if refusal is not None:
        return refusal
    refusal = await _run_as_admin(service, EffortCommand(effort or RESET, "channel"), **scope)
    # Logged in the form's order, effort then prompt; each only if it changed.
    await _audit(store, actor, "effort", "channel", platform, channel, old_effort)
    await _audit(store, actor, "system_prompt", "channel", platform, channel, old_prompt)
    return refusal


# --- problems -----------------------------------------------------------------------------------------

# Counters since the process started, read from the service's own metrics (no second log).
_PROBLEM_METRICS = {
    "seedbot_requests_total": "answers that did not complete",
    "seedbot_budget_refusals_total": "requests refused by a budget",
    "seedbot_platform_rate_limited_total": "429s from a chat platform",
    "seedbot_model_retries_total": "model calls retried",
}


@dataclass(frozen=True, slots=True)
class ProblemCount:
    what: str
    labels: str  # e.g. "slack · error"
    count: int


@dataclass(frozen=True, slots=True)
class ProblemsPage:
    failed_calls: list[LedgerEntry]
    unfinished_replies: list[StoredMessage]
    since_start: list[ProblemCount] = field(default_factory=list)


def problem_counts(metrics: Metrics) -> list[ProblemCount]:
    counts = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            what = _PROBLEM_METRICS.get(sample.name)
            if what is None or sample.value == 0 or sample.labels.get("outcome") == "complete":
                continue
            labels = " · ".join(sample.labels[key] for key in sorted(sample.labels))
            counts.append(ProblemCount(what, labels, int(sample.value)))
    return counts


async def problems_page(service: ChatService) -> ProblemsPage:
    return ProblemsPage(
        failed_calls=await service.store.failed_calls(PROBLEMS_SHOWN),
        unfinished_replies=await service.store.unfinished_replies(PROBLEMS_SHOWN),
        since_start=problem_counts(service.metrics),
    )


# --- feedback -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackPage:
    by_channel: list[FeedbackRate]
    by_effort: list[FeedbackRate]
    disliked: list[Feedback]  # the latest 👎, newest first


async def feedback_page(store: Store) -> FeedbackPage:
    return FeedbackPage(
        by_channel=await store.feedback_rates("channel"),
        by_effort=await store.feedback_rates("effort"),
        disliked=await store.disliked_answers(DISLIKED_SHOWN),
    )


async def answer_page(store: Store, platform: Platform, platform_message_id: str) -> StoredMessage | None:
    """The stored answer a rated message belongs to; None when retention or a forget removed it."""
    found = await store.find_by_platform_message(platform, platform_message_id)
    return found if found is not None and found.role == "assistant" else None
