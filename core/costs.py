"""Money: the price table, what a call cost, budgets (reserve before a call, settle after) and /cost reports.

Budgets work in two steps so that concurrent requests cannot overspend: `BudgetPolicy.reserve()` holds
the call's worst case (its estimated prompt plus `max_tokens` of output, priced) atomically in the store
and refuses when that does not fit; `BudgetPolicy.settle()` replaces the hold with the real cost.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from core.config import Settings
from core.llm.types import CompletionResult
from core.media.tokens import estimate_text_tokens
from core.models import ConversationKey, Platform
from core.money import format_usd
from core.store.base import (
    UNLIMITED,
    BudgetRefusal,
    CostSource,
    LedgerEntry,
    Reservation,
    ReservationRequest,
    Store,
    UsageFilter,
    UsageGroup,
    UsageGroupBy,
    UsageTotals,
    utc_now,
)

MILLION = Decimal(1_000_000)
Period = Literal["today", "7d", "30d", "all"]
PERIODS: tuple[Period, ...] = ("today", "7d", "30d", "all")
ReportScope = Literal["me", "channel", "workspace"]
REPORT_SCOPES: tuple[ReportScope, ...] = ("me", "channel", "workspace")
_PERIOD_TITLES: dict[Period, str] = {
    "today": "today",
    "7d": "last 7 days",
    "30d": "last 30 days",
    "all": "all time",
}
_SCOPE_TITLES: dict[ReportScope, str] = {
    "me": "you",
    "channel": "this channel",
    "workspace": "this workspace",
}


# --- prices ----------------------------------------------------------------------------------------------


def estimate_cost(settings: Settings, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """The price table (SEEDBOT_PRICE_*_PER_M) applied to token counts. Reasoning tokens are part of
    `completion_tokens`, as the API counts them; cached prompt tokens are priced as input (the safe side)."""
    return (
        settings.price_input_per_m * prompt_tokens + settings.price_output_per_m * completion_tokens
    ) / MILLION


def call_cost(
    settings: Settings, result: CompletionResult, *, estimated_prompt_tokens: int
) -> tuple[Decimal, CostSource]:
    """What a finished (or failed) call cost: the API's own figure when it sent one, else an estimate."""
    if result.cost.usd is not None:
        return result.cost.usd, "reported"
    if result.usage is not None:
        return estimate_cost(
            settings, result.usage.prompt_tokens, result.usage.completion_tokens
        ), "estimated"
    if not (result.content or result.reasoning):
        return Decimal(0), "estimated"  # the model never answered: nothing was billed
    # The stream broke before its usage chunk: the prompt was read and the text so far was generated.
    completion = estimate_text_tokens(result.content) + estimate_text_tokens(result.reasoning)
    return estimate_cost(settings, estimated_prompt_tokens, completion), "estimated"


# --- budgets ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """The limits that apply in a workspace (None: unlimited)."""

    user_daily: Decimal | None
    workspace_monthly: Decimal | None


def describe_refusal(refusal: BudgetRefusal, now: datetime) -> str:
    """The chat message for a refused call."""
    used = refusal.spent + refusal.reserved
    if refusal.budget == "user_daily":
        head = f"daily budget of {format_usd(refusal.limit)} reached"
        resets = "resets at 00:00 UTC"
    else:
        head = f"this workspace's monthly budget of {format_usd(refusal.limit)} reached"
        resets = f"resets on {_day_month(_next_month(now.date()))} at 00:00 UTC"
    if used < refusal.limit:
        head += f" ({format_usd(used)} used; this request may cost up to {format_usd(refusal.amount)})"
    return f"{head}; {resets}"


class BudgetPolicy:
    """Budgets of one deployment: the environment's limits, overridden per workspace at run time."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    async def limits(self, platform: Platform, workspace: str) -> BudgetLimits:
        async def limit(name: str, default: Decimal | None) -> Decimal | None:
            value = await self.store.get_setting(name, "workspace", platform, workspace)
            if value is None:
                return default
            return None if value == UNLIMITED else Decimal(value)

        return BudgetLimits(
            user_daily=await limit("user_daily_budget_usd", self.settings.user_daily_budget_usd),
            workspace_monthly=await limit(
                "workspace_monthly_budget_usd", self.settings.workspace_monthly_budget_usd
            ),
        )

    async def reserve(
        self, key: ConversationKey, user: str, amount: Decimal, *, now: datetime | None = None
    ) -> Reservation | str:
        """Hold `amount` (the call's worst case, see `worst_case_cost`) before making the call.

        Returns the reservation to settle afterwards, or the refusal to show in the chat, e.g.
        "daily budget of $0.50 reached; resets at 00:00 UTC".
        """
        now = now or utc_now()
        limits = await self.limits(key.platform, key.workspace)
        outcome = await self.store.reserve_budget(
            ReservationRequest(
                platform=key.platform,
                workspace=key.workspace,
                user=user,
                amount=amount,
                user_daily_limit=limits.user_daily,
                workspace_monthly_limit=limits.workspace_monthly,
                at=now,
            )
        )
        return describe_refusal(outcome, now) if isinstance(outcome, BudgetRefusal) else outcome

    async def settle(self, reservation: Reservation, entry: LedgerEntry | None) -> None:
        """Replace the hold with the call's real cost (`entry`), or just release it if no call was made."""
        await self.store.settle_reservation(reservation.id, entry)


def worst_case_cost(
    settings: Settings, estimated_prompt_tokens: int, max_tokens: int | None = None
) -> Decimal:
    """What a call can cost at most: its prompt plus a reply of `max_tokens` (default SEEDBOT_MAX_TOKENS)."""
    return estimate_cost(
        settings, estimated_prompt_tokens, settings.max_tokens if max_tokens is None else max_tokens
    )


# --- reports ---------------------------------------------------------------------------------------------


def period_start(period: Period, now: datetime) -> date | None:
    """The first UTC day a period covers ("7d" is today and the six days before), None for all time."""
    days = {"today": 1, "7d": 7, "30d": 30}.get(period)
    return None if days is None else now.date() - timedelta(days=days - 1)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    label: str  # "your daily budget", "this workspace's monthly budget"
    limit: Decimal
    spent: Decimal
    resets: str

    @property
    def left(self) -> Decimal:
        return max(self.limit - self.spent, Decimal(0))


@dataclass(frozen=True, slots=True)
class SpendReport:
    scope: ReportScope
    period: Period
    totals: UsageTotals
    budgets: list[BudgetStatus] = field(default_factory=list)
    top_users: list[UsageGroup] = field(default_factory=list)  # only in admin reports
    top_channels: list[UsageGroup] = field(default_factory=list)  # workspace reports


def report_filter(key: ConversationKey, user: str, scope: ReportScope) -> UsageFilter:
    """The ledger rows `/cost` reports on for someone in `key`'s channel: theirs, the channel's or the
    workspace's."""
    return UsageFilter(
        key.platform,
        key.workspace,
        channel=key.channel if scope == "channel" else None,
        user=user if scope == "me" else None,
    )


async def spend_report(
    store: Store,
    settings: Settings,
    *,
    key: ConversationKey,
    user: str,
    scope: ReportScope,
    period: Period,
    include_top: bool = False,
    top: int = 5,
    now: datetime | None = None,
) -> SpendReport:
    """What `/cost` shows for someone talking in `key`'s channel: totals for the scope and period, the
    budget left, the busiest channels of a workspace, and (`include_top`, for admins) the top spenders."""
    now = now or utc_now()
    since = period_start(period, now)
    platform, workspace = key.platform, key.workspace
    where = report_filter(key, user, scope)
    totals = await store.usage_totals(where, since)
    limits = await BudgetPolicy(settings, store).limits(platform, workspace)
    budgets = []
    if limits.user_daily is not None and scope == "me":
        spent = await store.usage_totals(UsageFilter(platform, workspace, user=user), now.date())
        budgets.append(BudgetStatus("your daily budget", limits.user_daily, spent.usd, "00:00 UTC"))
    if limits.workspace_monthly is not None and scope in ("me", "workspace"):
        spent = await store.usage_totals(UsageFilter(platform, workspace), now.date().replace(day=1))
        resets = f"{_day_month(_next_month(now.date()))} 00:00 UTC"
        budgets.append(
            BudgetStatus("this workspace's monthly budget", limits.workspace_monthly, spent.usd, resets)
        )
    top_users = (
        await store.usage_breakdown(where, "user", since, top) if include_top and scope != "me" else []
    )
    top_channels = await store.usage_breakdown(where, "channel", since, top) if scope == "workspace" else []
    return SpendReport(scope, period, totals, budgets, top_users, top_channels)


Labeller = Callable[[UsageGroupBy, str], str]
"""How the platform shows a user or channel id (e.g. Slack's `<@U123>`); the default shows the id."""


def str_label(kind: UsageGroupBy, key: str) -> str:
    return key


def format_spend_report(report: SpendReport, *, label: Labeller = str_label) -> str:
    """Plain text lines for the chat."""
    lines = [
        f"Spend for {_SCOPE_TITLES[report.scope]} · {_PERIOD_TITLES[report.period]}",
        _totals_line(report.totals),
    ]
    for budget in report.budgets:
        lines.append(
            f"{budget.label.capitalize()}: {format_usd(budget.left)} left of {format_usd(budget.limit)}"
            f" (resets {budget.resets})"
        )
    tops: tuple[tuple[str, UsageGroupBy, list[UsageGroup]], ...] = (
        ("Top spenders", "user", report.top_users),
        ("Top channels", "channel", report.top_channels),
    )
    for title, kind, groups in tops:
        if groups:
            lines.append(f"{title}:")
            lines.extend(
                f"{rank}. {label(kind, group.key)} — {format_usd(group.totals.usd)}"
                f" ({_requests(group.totals.requests)})"
                for rank, group in enumerate(groups, 1)
            )
    return "\n".join(lines)


async def cost_report(
    store: Store,
    settings: Settings,
    *,
    key: ConversationKey,
    user: str,
    scope: ReportScope,
    period: Period,
    include_top: bool = False,
    label: Labeller = str_label,
    now: datetime | None = None,
) -> str:
    """The `/cost` answer as text: `spend_report` formatted by `format_spend_report`."""
    report = await spend_report(
        store, settings, key=key, user=user, scope=scope, period=period, include_top=include_top, now=now
    )
    return format_spend_report(report, label=label)


def _totals_line(totals: UsageTotals) -> str:
    tokens = totals.prompt_tokens + totals.completion_tokens
    return (
        f"{_requests(totals.requests)} · {tokens:,} tokens ({totals.reasoning_tokens:,} reasoning,"
        f" {totals.cached_tokens:,} cached) · {format_usd(totals.usd)}"
    )


def _requests(count: int) -> str:
    return f"{count:,} request{'' if count == 1 else 's'}"


def _day_month(day: date) -> str:
    return f"{day.day} {day:%B}"


def _next_month(day: date) -> date:
    return day.replace(day=1) + timedelta(days=calendar.monthrange(day.year, day.month)[1])
