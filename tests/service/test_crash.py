"""A `seedbot run` killed with SIGKILL at any moment of an answer: after the restart, the reply says
it was interrupted (never half an answer that looks finished), on Slack (native stream and edit mode)
and on Discord."""

from __future__ import annotations

import asyncio

import pytest

from core.service import INTERRUPTED_BY_RESTART
from tests.discord.conftest import populate
from tests.fakes.discord import FakeDiscord
from tests.fakes.model_server import Script
from tests.fakes.slack import APP_TOKEN, BOT_USER_ID, FakeSlack
from tests.fakes.slack import BOT_TOKEN as SLACK_BOT_TOKEN
from tests.service.test_run import Seedbot, discord_env, environment

# Killed this long after the first answer text is visible: before the store's 2 s text checkpoint.
KILL_AFTER_S = 0.5
SLOW_ANSWER = Script(content="word " * 600, chunk_chars=5, delay_s=0.05)


@pytest.fixture
async def discord_api():
    async with FakeDiscord() as api:
        yield api


async def kill(bot: Seedbot) -> None:
    assert bot.process is not None
    bot.process.kill()
    await bot.process.wait()


@pytest.mark.parametrize("mode", ["native", "edit"])
async def test_a_slack_reply_killed_half_a_second_in_is_marked_interrupted(model_server, tmp_path, mode):
    async with FakeSlack() as slack:
        alice = slack.add_user("alice")
        general = slack.add_channel("general", members=[alice])
        env = environment(
            model_server,
            tmp_path,
            SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.api_url,
            SLACK_STREAM_MODE=mode,
        )
        model_server.enqueue(SLOW_ANSWER)
        async with Seedbot(env) as bot:
            await asyncio.wait_for(slack.socket.connected.wait(), 20)
            prompt = await slack.post(alice, general, f"<@{BOT_USER_ID}> count the words")
            await slack.wait_for(
                lambda: any("word" in m.text for m in slack.bot_messages(general, prompt)), within_s=20
            )
            await asyncio.sleep(KILL_AFTER_S)
            await kill(bot)
        [reply] = slack.bot_messages(general, prompt)
        assert INTERRUPTED_BY_RESTART not in reply.text
        async with Seedbot(env) as bot:
            await slack.wait_for(lambda: INTERRUPTED_BY_RESTART in reply.text, within_s=20)
            await bot.terminate()
        assert not reply.streaming


async def test_a_discord_reply_killed_half_a_second_in_is_marked_interrupted(
    model_server, tmp_path, discord_api
):
    world = populate(discord_api)
    env = environment(model_server, tmp_path, **discord_env(discord_api))
    model_server.enqueue(SLOW_ANSWER)
    async with Seedbot(env) as bot:
        await discord_api.wait_ready(within_s=20)
        await discord_api.user_message(world.general, world.alice, world.mention("count the words"))
        await discord_api.wait_for(
            lambda: any("word" in m["content"] for m in discord_api.bot_messages(world.general)),
            within_s=20,
            what="the answer to start",
        )
        await asyncio.sleep(KILL_AFTER_S)
        await kill(bot)
    [reply] = discord_api.bot_messages(world.general)
    assert INTERRUPTED_BY_RESTART not in reply["content"]
    async with Seedbot(env) as bot:
        await discord_api.wait_for(
            lambda: INTERRUPTED_BY_RESTART in discord_api.bot_messages(world.general)[0]["content"],
            within_s=20,
            what="the reply marked interrupted",
        )
        await bot.terminate()


async def test_a_second_instance_without_redis_waits_for_the_first_then_takes_over(
    model_server, tmp_path, discord_api
):
    world = populate(discord_api)
    env = environment(model_server, tmp_path, **discord_env(discord_api))
    model_server.enqueue(SLOW_ANSWER)
    async with Seedbot(env) as first:
        await discord_api.wait_ready(within_s=20)
        identified = discord_api.gateway.identifies
        async with Seedbot(env) as second:
            await waiting_line(second)
            await discord_api.user_message(world.general, world.alice, world.mention("count the words"))
            await discord_api.wait_for(
                lambda: any("word" in m["content"] for m in discord_api.bot_messages(world.general)),
                within_s=20,
                what="the first instance to answer",
            )
            assert discord_api.gateway.identifies == identified  # the second is not connected
            await asyncio.sleep(KILL_AFTER_S)
            await kill(first)
            # Its lease runs out; the second starts and marks the dead one's reply interrupted.
            await discord_api.wait_for(
                lambda: INTERRUPTED_BY_RESTART in discord_api.bot_messages(world.general)[0]["content"],
                within_s=30,
                what="the reply marked interrupted by the survivor",
            )
            await discord_api.wait_for(
                lambda: discord_api.gateway.identifies == identified + 1, within_s=20, what="it to connect"
            )
            await second.terminate()


async def waiting_line(bot: Seedbot) -> str:
    """The one line an instance logs while it waits for a live peer (bounded: 50 lines, 20 s)."""
    assert bot.process is not None and bot.process.stderr is not None
    for _ in range(50):
        line = (await asyncio.wait_for(bot.process.stderr.readline(), 20)).decode()
        if "another seedbot instance" in line:
            assert "REDIS_URL" in line
            return line
    raise AssertionError("the second instance never said it was waiting")
