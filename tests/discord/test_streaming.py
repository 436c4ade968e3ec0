"""Streaming under Discord's limits: long answers, rate limits, and a gateway that drops mid-answer."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.discord.conftest import StartBot, World
from tests.discord.test_messages import wait_answer
from tests.fakes.discord import EPHEMERAL
from tests.fakes.model_server import FakeModelServer, Script

PATCH_MESSAGE = "PATCH /channels/{channel}/messages/{message}"


async def test_long_answers_continue_in_replies_without_breaking_code_blocks(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    code = "\n".join(f"    print('line {i:03d} of a long program')" for i in range(150))
    answer = "Here is the program:\n\n```python\n" + code + "\n```\n\nThat is all."
    assert len(answer) > 4000
    model_server.enqueue(Script(content=answer, chunk_chars=400))
    await start_bot()
    prompt = await api.user_message(world.general, world.alice, world.mention("write a long program"))
    await wait_answer(api, world.general, "That is all.")
    parts = api.bot_messages(world.general)
    assert len(parts) >= 3
    assert all(len(part["content"]) <= 2000 for part in parts)
    assert all(part["content"].count("```") % 2 == 0 for part in parts)  # every part's fences close
    assert parts[0]["message_reference"]["message_id"] == prompt["id"]
    for previous, part in itertools.pairwise(parts):
        assert part["message_reference"]["message_id"] == previous["id"]
    shown = "\n".join(part["content"] for part in parts)
    assert all(f"line {i:03d}" in shown for i in range(150))
    assert api.rate_limited == []


async def test_429s_on_edits_slow_down_and_the_final_text_still_lands(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(Script(content="Rate limits are no obstacle. " * 8, chunk_chars=10, delay_s=0.02))
    await start_bot()
    # discord.py retries a 429 five times itself; the sixth reaches the reply engine, which waits.
    api.force_429(PATCH_MESSAGE, retry_after=0.05, count=6)
    await api.user_message(world.general, world.alice, world.mention("go"))
    reply = await wait_answer(api, world.general, "no obstacle. Rate limits are no obstacle.")
    assert len(api.rate_limited) == 6
    assert reply["content"].count("Rate limits are no obstacle.") == 8


async def test_a_dropped_gateway_mid_answer_resumes_and_answers_exactly_once(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    answer = "This answer survives a reconnect. " * 6
    model_server.enqueue(Script(content=answer, chunk_chars=8, delay_s=0.03))
    await start_bot()
    await api.user_message(world.general, world.alice, world.mention("are you resilient?"))
    await api.wait_for(lambda: api.bot_messages(world.general), what="the answer to start")
    # Cut the connection and have Discord deliver the prompt again after the RESUME.
    await api.gateway.drop(redeliver=("MESSAGE_CREATE",))
    await wait_answer(api, world.general, answer.strip())
    await api.wait_for(lambda: api.gateway.resumes == 1 and api.gateway.connected, what="the RESUME")
    assert api.gateway.identifies == 1
    assert len(model_server.requests) == 1
    assert len(api.bot_messages(world.general)) == 1


async def test_stopping_lets_an_answer_in_flight_finish_then_disconnects(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    answer = "Finished before shutting down. " * 4
    model_server.enqueue(Script(content=answer, chunk_chars=8, delay_s=0.03))
    bot = await start_bot()
    await api.user_message(world.general, world.alice, world.mention("one more thing"))
    await api.wait_for(lambda: api.bot_messages(world.general), what="the answer to start")
    stopping = asyncio.create_task(bot.runner.stop(grace_s=10))
    await api.wait_for(lambda: not bot.runner.client.seed.work.accepting, what="the bot to stop taking work")
    await api.user_message(world.general, world.bob, world.mention("me too?"))  # not taken any more
    interaction = await api.invoke_command(world.general, world.bob, "effort")
    (refusal,) = await api.wait_for(lambda: api.responses(interaction), what="the refusal")
    assert "restarting" in refusal["content"] and refusal["flags"] & EPHEMERAL
    await stopping
    assert not bot.runner.ready()
    assert len(model_server.requests) == 1
    (reply,) = api.bot_messages(world.general)
    assert answer.strip() in reply["content"]
    await api.wait_for(lambda: not api.gateway.connected, what="the gateway connection to close")


@pytest.mark.parametrize("discord_api", [{"global_rate": (10, 1.0)}], indirect=True)
@pytest.mark.parametrize("threads", [False, True], ids=["in-channel", "thread-per-conversation"])
async def test_answers_in_many_channels_at_once_stay_within_the_bots_global_limit(
    world: World, start_bot: StartBot, model_server: FakeModelServer, threads: bool
) -> None:
    # A global limit of 10 a second (Discord's is 50), and the bot told so; opening each answer's
    # thread counts too.
    api = world.api
    channels = [api.add_channel(world.guild, f"busy-{n}") for n in range(12)]
    answer = "Within the bot's global limit. " * 4
    model_server.default = Script(content=answer, chunk_chars=10, delay_s=0.05)
    await start_bot(discord_global_rate_limit=10, discord_thread_per_conversation=threads)
    await asyncio.sleep(1.1)  # the start-up calls' second is over
    prompts = [await api.user_message(channel, world.alice, world.mention("go")) for channel in channels]
    for channel, prompt in zip(channels, prompts, strict=True):
        where = channel
        if threads:
            where = await api.wait_for(lambda p=prompt: api.channels.get(int(p["id"])), what="the thread")
        await api.wait_for(
            lambda where=where: any(
                m["content"].startswith(answer.strip()) and "effort" in m["content"]
                for m in api.bot_messages(where)
            ),
            within_s=30,
            what="every answer's final text",
        )
    assert api.rate_limited == []
