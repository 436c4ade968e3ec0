"""Mentions, thread follow-ups, DMs and thread context, end to end over Socket Mode."""

from __future__ import annotations

from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import BOT_ID
from tests.slack.conftest import StartBot, World, model_prompt, reply_text


async def test_a_mention_is_answered_in_the_thread_of_the_message(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="Paris is the capital of France.", reasoning="Geography."))
    ts = await world.slack.post(world.alice, world.general, world.mention("capital of France?"))
    await bot.idle()
    replies = world.slack.bot_messages(world.general, thread_ts=ts)
    assert len(replies) == 1
    assert "Paris is the capital of France." in replies[0].text
    assert not replies[0].streaming
    assert "capital of France?" in model_prompt(model_server)
    assert len(model_server.requests) == 1  # app_mention and message events: one answer
