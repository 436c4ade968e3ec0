"""Shared budgets under contention: urgent calls first, fair shares between replies, statuses and
mid-answer edits give way (real time, fast budgets; the assertions are about order, not time)."""

from __future__ import annotations

import asyncio

import pytest

from core.coordination import Draw, MemoryBuckets, Rate
from core.metrics import Metrics
from core.reply.budgets import SharedBudgets
from core.reply.pacing import Priority

FAST = Rate(40.0, burst=1)  # a token every 25 ms
UPDATE = [Draw("ws:update", FAST, name="update")]


async def drain(budgets: SharedBudgets) -> None:
    assert await budgets.acquire(UPDATE, "urgent", lane=budgets.lane(), patience_s=1.0)


async def test_the_reply_granted_least_goes_first():
    budgets = SharedBudgets(MemoryBuckets())
    greedy, first, second = budgets.lane(), budgets.lane(), budgets.lane()
    for _ in range(4):
        assert await budgets.acquire(UPDATE, "routine", lane=greedy, patience_s=1.0)
    order: list[int] = []

    async def ask(lane: int, times: int) -> None:
        for _ in range(times):
            if await budgets.acquire(UPDATE, "routine", lane=lane, patience_s=2.0):
                order.append(lane)

    await asyncio.gather(ask(greedy, 3), ask(first, 5), ask(second, 5))
    # The two newcomers catch up on the greedy reply's four before it gets a fifth.
    assert greedy not in order[:8]
    assert sorted(order[:8]) == [first] * 4 + [second] * 4


async def test_a_final_text_overtakes_mid_answer_edits_already_waiting():
    budgets = SharedBudgets(MemoryBuckets())
    await drain(budgets)
    order: list[Priority] = []

    async def ask(priority: Priority) -> None:
        if await budgets.acquire(UPDATE, priority, lane=budgets.lane(), patience_s=2.0):
            order.append(priority)

    edits = [asyncio.create_task(ask("routine")) for _ in range(3)]
    await asyncio.sleep(0)  # the edits are in line first
    await asyncio.gather(ask("urgent"), *edits)
    assert order[0] == "urgent" and order.count("routine") == 3


async def test_the_thinking_status_gives_way_when_the_budget_runs_low_and_says_so():
    metrics = Metrics()
    budgets = SharedBudgets(MemoryBuckets(), metrics=metrics)
    status = [Draw("ws:status", Rate(0.01, burst=4), name="status")]
    lane = budgets.lane()
    granted = [await budgets.acquire(status, "low", lane=lane, patience_s=0.0) for _ in range(4)]
    # Low calls leave half the burst for the rest: two statuses, then none.
    assert granted == [True, True, False, False]
    assert await budgets.acquire(status, "urgent", lane=lane, patience_s=0.0)
    assert budgets.deferred["low"] == 2
    text = metrics.render().decode()
    assert 'seedbot_reply_updates_deferred_total{priority="low"} 2.0' in text
    [fill] = [
        line
        for line in text.splitlines()
        if line.startswith('seedbot_reply_budget_fill_ratio{budget="status"}')
    ]
    assert float(fill.split()[-1]) == pytest.approx(0.25, abs=0.01)
