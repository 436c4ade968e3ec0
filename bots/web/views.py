"""What each console page shows, gathered from the service and its store (no HTML here).

The console changes settings only through `ConsoleService`, the setters the chat commands use, so a
change made here means exactly what the same change made with `/seed budget` means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from bots.web.svg import Chart, stacked_bars
from core.charts import day_range
from core.config import Settings
from core.costs import BudgetLimits
from core.llm.types import Effort
from core.metrics import Metrics
from core.store.base import (
    BudgetKind,
    DailyUsage,
    LedgerEntry,
    ScopedUsage,
    SettingChange,
    SettingScope,
    Store,
    StoredMessage,
    UsageFilter,
    UsageTotals,
    normalise_setting,
)

CHART_DAYS = 30
BUSIEST = 10
BUDGET_USERS_SHOWN = 20
PROBLEMS_SHOWN = 100
BUDGET_KINDS: tuple[BudgetKind, ...] = ("user_daily", "workspace_monthly")


class ConsoleService(Protocol):
    """What the console needs of `ChatService` (these are the setters the chat commands call)."""

    settings: Settings
    store: Store
    metrics: Metrics

    async def budgets_for(self, platform: str, workspace: str) -> BudgetLimits: ...

    async def set_budget(
        self, kind: BudgetKind, amount: str | None, *, platform: str, workspace: str
    ) -> None: ...

    async def set_effort(
        self, level: Effort | None, *, scope: SettingScope, platform: str, scope_id: str
    ) -> None: ...

    async def system_prompt_for(self, platform: str, channel: str) -> tuple[str, bool]: ...

    async def set_system_prompt(self, text: str | None, *, platform: str, channel: str) -> None: ...


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


async def budgets_page(service: ConsoleService, today: date) -> BudgetsPage:
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
                limits=await service.budgets_for(platform, workspace),
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
    service: ConsoleService,
    actor: str,
    kind: BudgetKind,
    amount: str | None,
    *,
    platform: str,
    workspace: str,
) -> None:
    """Change a workspace's budget through the service and log the change; SettingError if bad."""
    name = f"{kind}_budget_usd"
    old = await service.store.get_setting(name, "workspace", platform, workspace)
    await service.set_budget(kind, amount, platform=platform, workspace=workspace)
    await _audit(service.store, actor, name, "workspace", platform, workspace, old)


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


async def channels_page(service: ConsoleService) -> ChannelsPage:
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
    service: ConsoleService,
    actor: str,
    *,
    platform: str,
    channel: str,
    effort: Effort | None,
    system_prompt: str | None,
) -> None:
    """Set a channel's effort and system prompt (None: back to the default) through the service, and
    log what changed; SettingError if a value is not allowed (then nothing was changed)."""
    store = service.store
    old_effort = await store.get_setting("effort", "channel", platform, channel)
    old_prompt = await store.get_setting("system_prompt", "channel", platform, channel)
    if system_prompt is not None:
        normalise_setting("system_prompt", system_prompt)  # refuse a bad prompt before changing anything
    await service.set_effort(effort, scope="channel", platform=platform, scope_id=channel)
    await _audit(store, actor, "effort", "channel", platform, channel, old_effort)
    await service.set_system_prompt(system_prompt, platform=platform, channel=channel)
    await _audit(store, actor, "system_prompt", "channel", platform, channel, old_prompt)


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


async def problems_page(service: ConsoleService) -> ProblemsPage:
    return ProblemsPage(
        failed_calls=await service.store.failed_calls(PROBLEMS_SHOWN),
        unfinished_replies=await service.store.unfinished_replies(PROBLEMS_SHOWN),
        since_start=problem_counts(service.metrics),
    )
