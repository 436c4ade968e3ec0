"""Many answers at once in one busy workspace: Slack's per-workspace method budgets (token buckets
with bursts in the fake, as Slack counts them) are shared by every answer, so none gets a 429 and
every answer lands whole, with its footer."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.surface import SLACK_TIERS, pacer
from core.coordination import MemoryBuckets
from core.reply.budgets import SharedBudgets
from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, TIER_BUCKETS, FakeSlack
from tests.slack.conftest import StartBot, World

ANSWER = Script(content="".join(f"word{n} " for n in range(40)), chunk_chars=12, delay_s=0.02)
# The last whole answer can take as long as the budgets make it (30 finals at Tier 3 is ~25 s).
WHOLE_WITHIN_S = 90.0


def test_the_fake_workspace_allows_at_most_what_the_bot_plans_for():
    # The bot may only count on budgets Slack (here: the fake) really grants.
    for method, (per_minute, burst) in TIER_BUCKETS.items():
        assert SLACK_TIERS[method].per_s <= per_minute / 60.0, method
        assert SLACK_TIERS[method].burst <= burst, method


async def ask_everywhere(
    start_bot: StartBot, world: World, model_server: FakeModelServer, answers: int, **env: Any
):
    world.slack.enforce_tiers()
    bot = await start_bot(**env)
    channels = [world.slack.add_channel(f"busy{n}", members=[world.alice]) for n in range(answers)]
    model_server.enqueue(*[ANSWER] * answers)
    prompts = await asyncio.gather(
        *(
            world.slack.post(world.alice, channel, world.mention(f"question {n}"))
            for n, channel in enumerate(channels)
        )
    )
    assert await bot.runner.bot.work.idle(WHOLE_WITHIN_S), "the answers did not finish"
    return bot, list(zip(channels, prompts, strict=True))


def assert_whole(slack: FakeSlack, threads: list[tuple[str, str]]) -> None:
    for channel, ts in threads:
        [reply] = slack.bot_messages(channel, thread_ts=ts)
        assert reply.text.startswith(ANSWER.content.strip()), reply.text[:80]
        *_, footer = reply.text.split("\n\n")
        assert footer.startswith("_") and " tokens" in footer, footer


@pytest.mark.parametrize("answers", [10, 30])
async def test_simultaneous_native_answers_share_the_workspace_budgets_without_a_429(
    start_bot: StartBot, world: World, model_server: FakeModelServer, answers: int
):
    bot, threads = await ask_everywhere(start_bot, world, model_server, answers)
    assert world.slack.rate_limited_calls() == []
    assert_whole(world.slack, threads)
    streams = world.slack.calls_to("chat.startStream")
    # Streams open while chat.startStream has room; the rest start with a post, not a queue.
    assert 0 < len(streams) < answers
    assert len(world.slack.calls_to("chat.postMessage")) == answers - len(streams)
    assert len(world.slack.calls_to("chat.stopStream")) == len(streams)
    assert not any(
        message.streaming for channel, _ in threads for message in world.slack.bot_messages(channel)
    )
    assert bot.service.metrics.render().count(b"seedbot_reply_budget_fill_ratio{") >= 2


@pytest.mark.parametrize("answers", [10, 30])
async def test_simultaneous_edited_answers_share_chat_update_without_a_429(
    start_bot: StartBot, world: World, model_server: FakeModelServer, answers: int
):
    bot, threads = await ask_everywhere(start_bot, world, model_server, answers, slack_stream_mode="edit")
    assert world.slack.rate_limited_calls() == []
    assert_whole(world.slack, threads)
    assert world.slack.calls_to("chat.startStream") == []
    assert len(world.slack.calls_to("chat.postMessage")) == answers
    if answers == 30:
        # The thinking status thins out first: not every answer got one, every answer got its text.
        assert len([status for _, _, status in world.slack.statuses if status]) < answers
        metrics = bot.service.metrics.render().decode()
        assert 'seedbot_reply_updates_deferred_total{priority="low"} 0.0' not in metrics


async def test_the_fake_answers_a_burst_beyond_the_tier_with_429_and_retry_after(world: World):
    # The enforcement the tests above rely on: what the bot does not pace, the fake refuses.
    world.slack.enforce_tiers({"chat.postMessage": (60, 2)})

    async def post(session: aiohttp.ClientSession, channel: str) -> tuple[int, str | None]:
        async with session.post(
            world.slack.api_url + "chat.postMessage",
            data={"channel": channel, "text": "x"},
            headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        ) as response:
            return response.status, response.headers.get("Retry-After")

    async with aiohttp.ClientSession() as session:
        burst = [await post(session, world.general) for _ in range(3)]
        elsewhere = await post(session, world.random)
    assert [status for status, _ in burst] == [200, 200, 429]
    assert int(burst[2][1] or 0) >= 1
    assert elsewhere[0] == 200  # chat.postMessage is counted per channel


async def test_crash_recovery_edits_paced_through_the_workspace_budget_never_429(world: World):
    world.slack.enforce_tiers()
    replies = [world.slack.add_message(world.general, f"half an answer {n}") for n in range(3)]
    world.slack.expire_streams()
    world.slack.fail_next("chat.update", "ratelimited", status=429, retry_after=1)  # Slack's own limit
    client = AsyncWebClient(token=BOT_TOKEN, base_url=world.slack.api_url)
    budgets = SharedBudgets(MemoryBuckets())
    pace = pacer(budgets, TEAM_ID, world.general, "chat.update")
    for message in replies:
        update = functools.partial(client.chat_update, channel=world.general, ts=message.ts)
        await pace(functools.partial(update, markdown_text="interrupted"))
    assert [message.text for message in replies] == ["interrupted"] * len(replies)
    # Only the 429 the test injected: the budget (slowed by it) kept every other call within the tier.
    assert len(world.slack.rate_limited_calls()) == 1
