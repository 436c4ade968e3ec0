"""Shared budgets under contention: urgent calls first, fair shares between replies, statuses and
mid-answer edits give way (real time, fast budgets; the assertions are about order, not time)."""

from __future__ import annotations

import asyncio

import pytest

from core.coordination import Draw, MemoryBuckets, Rate
from core.metrics import Metrics
from core.reply.budgets import Pacer, ReplyCalls, SharedBudgets
from core.reply.pacing import Priority
from core.reply.surface import SurfaceBusy, SurfaceRateLimited

FAST = Rate(40.0, burst=1)  # a token every 25 ms
UPDATE = [Draw("ws:update", FAST, name="update")]
PATIENCE: dict[Priority, float] = {"urgent": 1.0, "routine": 0.0, "low": 0.0}


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


class Limited(Exception):
    """A platform's 429 in these tests, with its Retry-After."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after


def limited_for(error: Exception) -> float | None:
    return error.retry_after if isinstance(error, Limited) else None


async def test_a_call_outside_any_reply_is_retried_after_a_429_which_slows_the_budget_for_everyone():
    budgets = SharedBudgets(MemoryBuckets())
    answers = iter([Limited(0.2), "shown"])

    async def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    shown = await budgets.paced(UPDATE[0], call, patience_s=1.0, attempts=3, retry_after_of=limited_for)
    assert shown == "shown"
    # The 429 emptied the budget for every caller until its Retry-After.
    assert not await budgets.acquire(UPDATE, "urgent", lane=budgets.lane(), patience_s=0.0)


async def test_a_call_outside_any_reply_raises_other_failures_at_once_and_a_429_after_its_last_attempt():
    budgets = SharedBudgets(MemoryBuckets())
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("refused for good")

    with pytest.raises(ValueError):
        await budgets.paced(UPDATE[0], refused, patience_s=1.0, attempts=3, retry_after_of=limited_for)
    assert calls == 1

    async def always_limited() -> None:
        raise Limited(0.0)

    with pytest.raises(Limited):
        await budgets.paced(UPDATE[0], always_limited, patience_s=1.0, attempts=2, retry_after_of=limited_for)


async def test_a_pacer_takes_a_token_for_each_platform_call_its_call_makes_the_burst_at_most():
    slow = Draw("ws:reads", Rate(1.0, burst=3), name="reads")  # a token a second, three saved up
    budgets = SharedBudgets(MemoryBuckets())
    pace = Pacer(budgets, slow, limited_for)

    async def read() -> str:
        return "pages"

    assert await pace(read, calls=2) == "pages"
    assert await budgets.acquire([slow], "urgent", lane=budgets.lane(), patience_s=0.0)  # one was left
    assert not await budgets.acquire([slow], "urgent", lane=budgets.lane(), patience_s=0.0)
    # More calls than the burst holds: the whole burst, once it is there, rather than never.
    roomy = Draw("ws:more", Rate(1.0, burst=2), name="more")
    assert await Pacer(budgets, roomy, limited_for)(read, calls=5) == "pages"
    assert not await budgets.acquire([roomy], "urgent", lane=budgets.lane(), patience_s=0.0)


async def test_a_replys_calls_go_ahead_until_budgets_are_handed_over_then_wait_their_turn():
    calls = ReplyCalls(lambda method: Draw(f"ws:{method}", Rate(0.01, burst=2), name=method), PATIENCE)
    # No budgets yet (a surface used outside the service): nothing is counted.
    assert all([await calls.take("update") for _ in range(5)])
    budgets = SharedBudgets(MemoryBuckets())
    calls.use(budgets)
    assert await calls.take("update", priority="urgent")
    assert await calls.take("update", priority="urgent")
    assert not await calls.take("update", priority="urgent")
    with pytest.raises(SurfaceBusy):
        await calls.need("update")
    assert await calls.take("post", priority="urgent")  # each method has a budget of its own


async def test_a_429_inside_penalizing_empties_that_budget_for_every_reply_and_is_raised():
    budgets = SharedBudgets(MemoryBuckets())
    draw_for = lambda method: Draw(f"ws:{method}", Rate(1.0, burst=5), name=method)  # noqa: E731
    mine, other = ReplyCalls(draw_for, PATIENCE), ReplyCalls(draw_for, PATIENCE)
    mine.use(budgets)
    other.use(budgets)
    with pytest.raises(SurfaceRateLimited):
        async with mine.penalizing("update"):
            raise SurfaceRateLimited(5.0)
    assert not await other.take("update", priority="urgent", patience_s=0.0)
    assert await other.take("post", priority="urgent", patience_s=0.0)


async def test_a_closed_reply_no_longer_holds_back_routine_calls_of_the_others():
    budgets = SharedBudgets(MemoryBuckets())
    draw_for = lambda method: Draw(f"ws:{method}", Rate(0.01, burst=3), name=method)  # noqa: E731
    replies = [ReplyCalls(draw_for, PATIENCE) for _ in range(3)]
    for reply in replies:
        reply.use(budgets)
    # Three replies open: a routine call leaves a token for each one's final (but never so many
    # that nothing fits in a full budget), so one fits, not two.
    assert await replies[0].take("update", priority="routine", patience_s=0.0)
    assert not await replies[0].take("update", priority="routine", patience_s=0.0)
    replies[1].close()
    replies[2].close()
    assert await replies[0].take("update", priority="routine", patience_s=0.0)
