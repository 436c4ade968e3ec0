"""Money: prices, the cost of a call, budgets refusing clearly and never overspent, /cost reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.costs import (
    BudgetPolicy,
    call_cost,
    cost_report,
    estimate_cost,
    period_start,
    spend_report,
    worst_case_cost,
)
from core.llm.types import CompletionResult, Cost, Usage
from core.models import ConversationKey
from core.money import format_usd
from core.store import open_store
from core.store.base import LedgerEntry, Reservation, Store, UsageFilter

NOW = datetime(2026, 5, 20, 15, 30, tzinfo=UTC)
KEY = ConversationKey("slack", "T1", "C1", "1.0")


def settings(tmp_path: Path, **env: Any) -> Settings:
    return load_settings(_env_file=None, DATABASE_URL=f"sqlite:///{tmp_path / 'costs.db'}", **env)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(settings(tmp_path))
    try:
        yield opened
    finally:
        await opened.close()


def paid(
    usd: str, *, user: str = "U1", channel: str = "C1", at: datetime = NOW, request_id: str = ""
) -> LedgerEntry:
    return LedgerEntry(
        request_id=request_id or f"{user}-{channel}-{at.isoformat()}-{usd}",
        platform="slack",
        workspace="T1",
        channel=channel,
        user=user,
        model="bytedance/dola-seed-2-0-lite",
        effort="medium",
        prompt_tokens=1000,
        completion_tokens=400,
        reasoning_tokens=300,
        cached_tokens=200,
        usd=Decimal(usd),
        cost_source="reported",
        ttft_s=1.0,
        latency_s=3.0,
        outcome="ok",
        at=at,
    )


# --- prices ----------------------------------------------------------------------------------------------


def test_the_default_price_table_is_dola_seed_2_lite_on_the_aiml_api(tmp_path: Path) -> None:
    config = settings(tmp_path)
    assert estimate_cost(config, 1_000_000, 0) == Decimal("0.325")
    assert estimate_cost(config, 0, 1_000_000) == Decimal("2.60")
    assert estimate_cost(config, 1_000, 272) == Decimal("0.00103220")


def test_prices_are_configurable(tmp_path: Path) -> None:
    config = settings(tmp_path, SEEDBOT_PRICE_INPUT_PER_M="1", SEEDBOT_PRICE_OUTPUT_PER_M="4")
    assert estimate_cost(config, 500_000, 250_000) == Decimal("1.5")


def test_worst_case_is_the_prompt_plus_a_full_length_reply(tmp_path: Path) -> None:
    config = settings(tmp_path, SEEDBOT_MAX_TOKENS="8192")
    assert worst_case_cost(config, 10_000) == estimate_cost(config, 10_000, 8192)
    assert worst_case_cost(config, 10_000, max_tokens=100) == estimate_cost(config, 10_000, 100)


def test_the_cost_the_api_reports_wins(tmp_path: Path) -> None:
    result = CompletionResult("r1", content="hi", usage=Usage(10, 5, 15), cost=Cost(usd=Decimal("0.0042")))
    assert call_cost(settings(tmp_path), result, estimated_prompt_tokens=99) == (
        Decimal("0.0042"),
        "reported",
    )


def test_without_a_reported_cost_usage_is_priced(tmp_path: Path) -> None:
    config = settings(tmp_path)
    result = CompletionResult("r1", content="hi", usage=Usage(1000, 500, 1500, reasoning_tokens=400))
    assert call_cost(config, result, estimated_prompt_tokens=99) == (
        estimate_cost(config, 1000, 500),
        "estimated",
    )


def test_a_stream_cut_before_its_usage_is_estimated_from_its_text(tmp_path: Path) -> None:
    config = settings(tmp_path)
    result = CompletionResult("r1", content="a" * 300, reasoning="b" * 300)
    assert call_cost(config, result, estimated_prompt_tokens=2000) == (
        estimate_cost(config, 2000, 200),
        "estimated",
    )


def test_a_call_that_produced_nothing_costs_nothing(tmp_path: Path) -> None:
    assert call_cost(settings(tmp_path), CompletionResult("r1"), estimated_prompt_tokens=2000) == (
        Decimal(0),
        "estimated",
    )


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0.00"),
        ("0.5", "$0.50"),
        ("0.0033285", "$0.0033"),
        ("0.02130", "$0.0213"),
        ("0.00001", "<$0.0001"),
        ("12.345", "$12.35"),
        ("1234.5", "$1,234.50"),
    ],
)
def test_money_is_shown_with_useful_precision(amount: str, shown: str) -> None:
    assert format_usd(Decimal(amount)) == shown


# --- budgets ---------------------------------------------------------------------------------------------


async def test_a_user_over_the_daily_budget_is_refused_with_when_it_resets(
    tmp_path: Path, store: Store
) -> None:
    policy = BudgetPolicy(settings(tmp_path, SEEDBOT_USER_DAILY_BUDGET_USD="0.50"), store)
    await store.record_usage(paid("0.50"))

    refusal = await policy.reserve(KEY, "U1", Decimal("0.02"), now=NOW)

    assert refusal == "daily budget of $0.50 reached; resets at 00:00 UTC"
    assert isinstance(await policy.reserve(KEY, "U2", Decimal("0.02"), now=NOW), Reservation)
    tomorrow = NOW.replace(hour=0, minute=0) + timedelta(days=1)
    assert isinstance(await policy.reserve(KEY, "U1", Decimal("0.02"), now=tomorrow), Reservation)


async def test_a_request_that_does_not_fit_the_rest_says_how_much_it_needs(
    tmp_path: Path, store: Store
) -> None:
    policy = BudgetPolicy(settings(tmp_path, SEEDBOT_USER_DAILY_BUDGET_USD="0.50"), store)
    await store.record_usage(paid("0.49"))

    refusal = await policy.reserve(KEY, "U1", Decimal("0.0213"), now=NOW)

    assert refusal == (
        "daily budget of $0.50 reached ($0.49 used; this request may cost up to $0.0213); resets at 00:00 UTC"
    )


async def test_the_workspace_budget_is_monthly(tmp_path: Path, store: Store) -> None:
    policy = BudgetPolicy(settings(tmp_path, SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD="100"), store)
    await store.record_usage(paid("60", user="U1"), paid("40", user="U2"))
    await store.record_usage(paid("500", user="U3", at=NOW - timedelta(days=31)))

    refusal = await policy.reserve(KEY, "U4", Decimal("0.01"), now=NOW)

    assert refusal == "this workspace's monthly budget of $100.00 reached; resets on 1 June at 00:00 UTC"
    next_month = datetime(2026, 6, 1, tzinfo=UTC)
    assert isinstance(await policy.reserve(KEY, "U4", Decimal("0.01"), now=next_month), Reservation)


async def test_a_workspace_can_change_its_budgets_at_run_time(tmp_path: Path, store: Store) -> None:
    config = settings(
        tmp_path, SEEDBOT_USER_DAILY_BUDGET_USD="0.50", SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD="100"
    )
    policy = BudgetPolicy(config, store)
    await store.record_usage(paid("0.50"))

    await store.set_setting("user_daily_budget_usd", "2", "workspace", "slack", "T1")
    await store.set_setting("workspace_monthly_budget_usd", "unlimited", "workspace", "slack", "T1")

    limits = await policy.limits("slack", "T1")
    assert (limits.user_daily, limits.workspace_monthly) == (Decimal(2), None)
    assert isinstance(await policy.reserve(KEY, "U1", Decimal("1"), now=NOW), Reservation)
    other = await policy.limits("slack", "T2")
    assert (other.user_daily, other.workspace_monthly) == (Decimal("0.50"), Decimal(100))


async def test_settling_replaces_the_hold_with_the_real_cost(tmp_path: Path, store: Store) -> None:
    policy = BudgetPolicy(settings(tmp_path, SEEDBOT_USER_DAILY_BUDGET_USD="0.10"), store)
    hold = await policy.reserve(KEY, "U1", Decimal("0.08"), now=NOW)
    assert isinstance(hold, Reservation)
    assert isinstance(await policy.reserve(KEY, "U1", Decimal("0.08"), now=NOW), str)

    await policy.settle(hold, paid("0.01", request_id="settled"))

    assert isinstance(await policy.reserve(KEY, "U1", Decimal("0.08"), now=NOW), Reservation)
    assert (await store.usage_totals(UsageFilter("slack", "T1", user="U1"))).usd == Decimal("0.01")


async def test_two_hundred_concurrent_requests_never_overspend_by_more_than_one_hold(
    tmp_path: Path, store: Store
) -> None:
    config = settings(
        tmp_path, SEEDBOT_USER_DAILY_BUDGET_USD="0.50", SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD="5"
    )
    policy = BudgetPolicy(config, store)
    worst = worst_case_cost(config, 20_000)  # about $0.028 with the default 8192-token replies

    async def request(n: int) -> bool:
        hold = await policy.reserve(KEY, f"U{n % 2}", worst, now=NOW)
        if not isinstance(hold, Reservation):
            assert hold.startswith("daily budget of $0.50 reached")
            return False
        await asyncio.sleep(0)
        real = worst if n % 3 else worst / 4
        await policy.settle(hold, paid(str(real), user=f"U{n % 2}", request_id=f"call-{n}"))
        return True

    answered = await asyncio.gather(*(request(n) for n in range(200)))

    for user in ("U0", "U1"):
        spent = (await store.usage_totals(UsageFilter("slack", "T1", user=user))).usd
        assert spent <= Decimal("0.50") + worst
    assert sum(answered) >= 2 * int(Decimal("0.50") / worst)


# --- reports ---------------------------------------------------------------------------------------------


def test_periods_start_on_whole_utc_days() -> None:
    assert period_start("today", NOW) == NOW.date()
    assert period_start("7d", NOW) == NOW.date() - timedelta(days=6)
    assert period_start("30d", NOW) == NOW.date() - timedelta(days=29)
    assert period_start("all", NOW) is None


async def seed_spend(store: Store) -> None:
    await store.record_usage(
        paid("0.10", user="U1", channel="C1"),
        paid("0.20", user="U2", channel="C1"),
        paid("0.40", user="U2", channel="C2"),
        paid("0.80", user="U1", channel="C1", at=NOW - timedelta(days=10)),
    )


async def test_spend_report_scopes_and_periods(tmp_path: Path, store: Store) -> None:
    await seed_spend(store)
    config = settings(tmp_path)

    async def usd(scope: Any, period: Any) -> Decimal:
        report = await spend_report(store, config, key=KEY, user="U1", scope=scope, period=period, now=NOW)
        return report.totals.usd

    assert await usd("me", "today") == Decimal("0.1")
    assert await usd("me", "30d") == Decimal("0.9")
    assert await usd("channel", "7d") == Decimal("0.3")
    assert await usd("workspace", "7d") == Decimal("0.7")
    assert await usd("workspace", "all") == Decimal("1.5")


async def test_only_admins_see_the_top_spenders(tmp_path: Path, store: Store) -> None:
    await seed_spend(store)
    config = settings(tmp_path)

    admin = await spend_report(
        store, config, key=KEY, user="U1", scope="workspace", period="all", include_top=True, now=NOW
    )
    member = await spend_report(store, config, key=KEY, user="U1", scope="workspace", period="all", now=NOW)

    assert [(g.key, g.totals.usd) for g in admin.top_users] == [
        ("U1", Decimal("0.9")),
        ("U2", Decimal("0.6")),
    ]
    assert member.top_users == []
    assert [g.key for g in member.top_channels] == ["C1", "C2"]


async def test_the_cost_report_reads_well(tmp_path: Path, store: Store) -> None:
    await seed_spend(store)
    config = settings(
        tmp_path, SEEDBOT_USER_DAILY_BUDGET_USD="0.50", SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD="10"
    )

    mine = await cost_report(store, config, key=KEY, user="U1", scope="me", period="today", now=NOW)
    workspace = await cost_report(
        store,
        config,
        key=KEY,
        user="U1",
        scope="workspace",
        period="7d",
        include_top=True,
        label=lambda kind, key: f"<@{key}>" if kind == "user" else f"<#{key}>",
        now=NOW,
    )

    assert mine == (
        "Spend for you · today\n"
        "1 request · 1,400 tokens (300 reasoning, 200 cached) · $0.10\n"
        "Your daily budget: $0.40 left of $0.50 (resets 00:00 UTC)\n"
        "This workspace's monthly budget: $8.50 left of $10.00 (resets 1 June 00:00 UTC)"
    )
    assert workspace == (
        "Spend for this workspace · last 7 days\n"
        "3 requests · 4,200 tokens (900 reasoning, 600 cached) · $0.70\n"
        "This workspace's monthly budget: $8.50 left of $10.00 (resets 1 June 00:00 UTC)\n"
        "Top spenders:\n"
        "1. <@U2> — $0.60 (2 requests)\n"
        "2. <@U1> — $0.10 (1 request)\n"
        "Top channels:\n"
        "1. <#C2> — $0.40 (1 request)\n"
        "2. <#C1> — $0.30 (2 requests)"
    )
