"""Usage ledger: one row per model call, exact money, reports by scope and period."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from core.store.base import Store, UsageFilter, UsageGroup, UsageTotals
from tests.core.store.entries import NOW, entry

SLACK = UsageFilter("slack")
T1 = UsageFilter("slack", "T1")


async def test_totals_add_up_every_field_exactly(store: Store) -> None:
    await store.record_usage(
        entry(
            usd=Decimal("0.0033285"),
            prompt_tokens=10,
            completion_tokens=20,
            reasoning_tokens=5,
            cached_tokens=2,
        ),
        entry(
            usd=Decimal("0.000000325"),
            prompt_tokens=1,
            completion_tokens=0,
            reasoning_tokens=0,
            cached_tokens=0,
        ),
    )

    assert await store.usage_totals(T1) == UsageTotals(
        requests=2,
        prompt_tokens=11,
        completion_tokens=20,
        reasoning_tokens=5,
        cached_tokens=2,
        usd=Decimal("0.003328825"),
    )


async def test_a_request_recorded_twice_counts_once(store: Store) -> None:
    once = entry(request_id="req-dup")
    assert await store.record_usage(once) == 1
    assert await store.record_usage(once, entry(request_id="req-other")) == 1
    assert await asyncio.gather(*(store.record_usage(once) for _ in range(20))) == [0] * 20

    assert (await store.usage_totals(T1)).requests == 2


async def test_periods_cover_whole_utc_days(store: Store) -> None:
    await store.record_usage(
        entry(at=NOW, usd=Decimal(1)),
        entry(at=NOW.replace(hour=0, minute=0), usd=Decimal(2)),
        entry(at=NOW - timedelta(days=6), usd=Decimal(4)),
        entry(at=NOW - timedelta(days=7), usd=Decimal(8)),
        entry(at=NOW - timedelta(days=400), usd=Decimal(16)),
    )
    today = NOW.date()

    assert (await store.usage_totals(T1, since=today)).usd == 3
    assert (await store.usage_totals(T1, since=today - timedelta(days=6))).usd == 7
    assert (await store.usage_totals(T1, since=today - timedelta(days=29))).usd == 15
    assert (await store.usage_totals(T1)).usd == 31


async def test_filters_by_workspace_channel_and_user(store: Store) -> None:
    await store.record_usage(
        entry(workspace="T1", channel="C1", user="U1", usd=Decimal(1)),
        entry(workspace="T1", channel="C1", user="U2", usd=Decimal(2)),
        entry(workspace="T1", channel="C2", user="U1", usd=Decimal(4)),
        entry(workspace="T2", channel="C9", user="U1", usd=Decimal(8)),
        entry(platform="discord", workspace="T1", channel="C1", user="U1", usd=Decimal(16)),
    )

    assert (await store.usage_totals(SLACK)).usd == 15
    assert (await store.usage_totals(T1)).usd == 7
    assert (await store.usage_totals(UsageFilter("slack", "T1", channel="C1"))).usd == 3
    assert (await store.usage_totals(UsageFilter("slack", "T1", user="U1"))).usd == 5
    assert (await store.usage_totals(UsageFilter("slack", user="U1"))).usd == 13
    assert (await store.usage_totals(UsageFilter("slack", "T3"))) == UsageTotals()


async def test_breakdowns_put_the_biggest_spender_first(store: Store) -> None:
    await store.record_usage(
        entry(user="U1", channel="C1", usd=Decimal("0.10")),
        entry(user="U2", channel="C2", usd=Decimal("0.50")),
        entry(user="U2", channel="C1", usd=Decimal("0.25")),
        entry(user="U3", channel="C3", usd=Decimal("0.05")),
        entry(user="U4", channel="C3", usd=Decimal("0.01"), workspace="T2"),
    )

    by_user = await store.usage_breakdown(T1, "user", limit=2)
    assert [(g.key, g.totals.usd, g.totals.requests) for g in by_user] == [
        ("U2", Decimal("0.75"), 2),
        ("U1", Decimal("0.1"), 1),
    ]
    by_channel = await store.usage_breakdown(T1, "channel")
    assert [(g.key, g.totals.usd) for g in by_channel] == [
        ("C2", Decimal("0.5")),
        ("C1", Decimal("0.35")),
        ("C3", Decimal("0.05")),
    ]
    by_workspace = await store.usage_breakdown(SLACK, "workspace")
    assert [g.key for g in by_workspace] == ["T1", "T2"]


async def test_breakdown_respects_the_period(store: Store) -> None:
    await store.record_usage(
        entry(user="U1", usd=Decimal(5), at=NOW - timedelta(days=3)),
        entry(user="U2", usd=Decimal(1), at=NOW),
    )

    assert await store.usage_breakdown(T1, "user", since=NOW.date()) == [
        UsageGroup("U2", UsageTotals(1, 1000, 500, 300, 100, Decimal(1)))
    ]
