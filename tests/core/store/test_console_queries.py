"""What the admin console and the usage export read: the ledger streamed in time order, spend per day,
totals per scope across platforms, stored settings, the audit log and the problems."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.models import ConversationKey
from core.store.base import DailyUsage, SettingChange, Store, UsageFilter, UsageTotals
from tests.core.store.entries import NOW, entry

TODAY = NOW.date()


async def test_iter_ledger_streams_every_row_in_time_order_across_batches(store: Store) -> None:
    same_moment = NOW - timedelta(hours=1)
    rows = [entry(at=NOW - timedelta(minutes=n)) for n in range(7)]
    rows += [entry(at=same_moment, request_id=f"tie-{n}") for n in range(5)]  # the id breaks ties
    await store.record_usage(*rows)

    streamed = [row async for row in store.iter_ledger(batch=2)]

    assert sorted(streamed, key=lambda row: row.request_id) == sorted(rows, key=lambda row: row.request_id)
    assert [row.at for row in streamed] == sorted(row.at for row in rows)
    assert [row.request_id for row in streamed if row.at == same_moment] == [f"tie-{n}" for n in range(5)]


async def test_iter_ledger_covers_whole_utc_days_from_since_to_until(store: Store) -> None:
    start_of_today = NOW.replace(hour=0, minute=0, second=0)
    await store.record_usage(
        entry(request_id="before", at=start_of_today - timedelta(days=2, seconds=1)),
        entry(request_id="first", at=start_of_today - timedelta(days=2)),
        entry(request_id="last", at=start_of_today - timedelta(seconds=1)),
        entry(request_id="after", at=start_of_today),
    )

    found = store.iter_ledger(TODAY - timedelta(days=2), TODAY - timedelta(days=1), batch=1)

    assert [row.request_id async for row in found] == ["first", "last"]


async def test_iter_ledger_keeps_money_exact(store: Store) -> None:
    await store.record_usage(entry(usd=Decimal("0.000000001")), entry(usd=Decimal("12.345678912")))

    assert sorted([row.usd async for row in store.iter_ledger()]) == [
        Decimal("0.000000001"),
        Decimal("12.345678912"),
    ]


async def test_usage_by_day_is_per_day_and_platform_and_honours_the_filter(store: Store) -> None:
    yesterday = NOW - timedelta(days=1)
    await store.record_usage(
        entry(usd=Decimal(1)),
        entry(usd=Decimal(2), channel="C2"),
        entry(usd=Decimal(4), platform="discord", workspace="G1"),
        entry(usd=Decimal(8), at=yesterday),
        entry(usd=Decimal(16), at=NOW - timedelta(days=40)),
    )

    days = await store.usage_by_day(TODAY - timedelta(days=29))
    in_c2 = await store.usage_by_day(TODAY, TODAY, UsageFilter("slack", "T1", channel="C2"))

    assert [(d.day, d.platform, d.totals.usd) for d in days] == [
        (TODAY - timedelta(days=1), "slack", Decimal(8)),
        (TODAY, "discord", Decimal(4)),
        (TODAY, "slack", Decimal(3)),
    ]
    assert in_c2 == [DailyUsage(TODAY, "slack", UsageTotals(1, 1000, 500, 300, 100, Decimal(2)))]
    assert await store.usage_by_day(until=TODAY - timedelta(days=2)) == [
        DailyUsage(TODAY - timedelta(days=40), "slack", UsageTotals(1, 1000, 500, 300, 100, Decimal(16)))
    ]


async def test_usage_groups_rank_scopes_across_platforms_with_their_workspace(store: Store) -> None:
    await store.record_usage(
        entry(usd=Decimal(1), channel="C1"),
        entry(usd=Decimal(5), channel="C1", platform="discord", workspace="G1"),
        entry(usd=Decimal(3), channel="C2"),
        entry(usd=Decimal(100), channel="C3", at=NOW - timedelta(days=60)),
    )

    recent = await store.usage_groups("channel", since=TODAY - timedelta(days=29))
    all_time = await store.usage_groups("channel", limit=1)
    one_platform = await store.usage_groups("workspace", where=UsageFilter("slack"))

    assert [(g.platform, g.workspace, g.key, g.totals.usd) for g in recent] == [
        ("discord", "G1", "C1", Decimal(5)),
        ("slack", "T1", "C2", Decimal(3)),
        ("slack", "T1", "C1", Decimal(1)),
    ]
    assert [(g.key, g.totals.usd) for g in all_time] == [("C3", Decimal(100))]
    assert [(g.key, g.totals.requests) for g in one_platform] == [("T1", 3)]


async def test_list_settings_returns_every_scope_of_the_names_asked(store: Store) -> None:
    await store.set_setting("effort", "high", "channel", "slack", "C1")
    await store.set_setting("workspace_monthly_budget_usd", "$20", "workspace", "discord", "G1")
    await store.set_setting("system_prompt", "Be brief.", "channel", "slack", "C1")

    budgets = await store.list_settings("workspace_monthly_budget_usd", "user_daily_budget_usd")
    everything = await store.list_settings()

    assert [(s.name, s.scope, s.platform, s.scope_id, s.value) for s in budgets] == [
        ("workspace_monthly_budget_usd", "workspace", "discord", "G1", "20")
    ]
    assert [s.name for s in everything] == ["effort", "system_prompt", "workspace_monthly_budget_usd"]


async def test_setting_changes_are_kept_newest_first(store: Store) -> None:
    first = SettingChange("console:ann", "user_daily_budget_usd", "workspace", "slack", "T1", None, "1")
    second = SettingChange("console:bob", "user_daily_budget_usd", "workspace", "slack", "T1", "1", None)
    await store.record_setting_change(first)
    await store.record_setting_change(second)

    changes = await store.setting_changes()

    assert [(c.actor, c.old, c.new) for c in changes] == [
        ("console:bob", "1", None),
        ("console:ann", None, "1"),
    ]
    assert abs(changes[0].at - second.at) < timedelta(milliseconds=1)


async def test_problems_are_failed_calls_and_unfinished_replies_newest_first(store: Store) -> None:
    await store.record_usage(
        entry(request_id="fine"),
        entry(request_id="broke", outcome="error", at=NOW - timedelta(minutes=5)),
        entry(request_id="cut", outcome="interrupted", at=NOW - timedelta(minutes=1)),
    )
    key = ConversationKey("slack", "T1", "C1", "171.1")
    done = await store.add_message(key, "assistant", "seedbot", "seedbot", "all of it")
    broken = await store.add_message(key, "assistant", "seedbot", "seedbot", "", status="error")
    halted = await store.add_message(key, "assistant", "seedbot", "seedbot", "half", status="streaming")
    await store.recover_streaming()

    assert [row.request_id for row in await store.failed_calls()] == ["cut", "broke"]
    replies = await store.unfinished_replies()
    assert [(m.id, m.status) for m in replies] == [(halted, "interrupted"), (broken, "error")]
    assert done not in {m.id for m in replies}


async def test_names_sort_by_code_point_on_every_backend(store: Store) -> None:
    # Upper case before lower case, as SQLite compares text, whatever PostgreSQL's locale would say.
    for channel in ("c1", "C2", "_C3"):
        await store.set_setting("effort", "low", "channel", "slack", channel)
        await store.record_usage(entry(channel=channel))

    assert [s.scope_id for s in await store.list_settings("effort")] == ["C2", "_C3", "c1"]
    assert [g.key for g in await store.usage_groups("channel")] == ["C2", "_C3", "c1"]
