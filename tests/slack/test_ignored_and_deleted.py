"""What the bot ignores (its own echo, other bots, edits, system messages) and how a deleted prompt
stops the answer that is streaming."""

from __future__ import annotations

from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import BOT_ID, BOT_USER_ID
from tests.slack.conftest import StartBot, World, model_prompt

SLOW = Script(content="word " * 400, chunk_chars=5, delay_s=0.01)


async def test_its_own_messages_and_edits_coming_back_as_events_are_ignored(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_stream_mode="edit")
    model_server.enqueue(Script(content=f"Ask <@{BOT_USER_ID}> anything.", chunk_chars=2, delay_s=0.02))
    await world.slack.post(world.alice, world.general, world.mention("hello"))
    await bot.idle()
    await world.slack.echoes_delivered()
    echoes = [d for d in world.slack.deliveries if d.payload.get("event", {}).get("bot_id") == BOT_ID]
    changes = [
        d for d in world.slack.deliveries if d.payload.get("event", {}).get("subtype") == "message_changed"
    ]
    assert echoes and changes
    assert all(d.acked for d in echoes + changes)
    await bot.idle()
    assert len(model_server.requests) == 1


async def test_other_bots_are_ignored_unless_configured(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    await world.slack.post(world.robot, world.general, world.mention("deploy report"))
    await bot.idle()
    assert model_server.requests == []


async def test_other_bots_are_answered_when_slack_ignore_bots_is_off(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_ignore_bots=False)
    ts = await world.slack.post(world.robot, world.general, world.mention("deploy report"))
    await bot.idle()
    assert "deploy report" in model_prompt(model_server)
    assert world.slack.bot_messages(world.general, thread_ts=ts)


async def test_edits_and_system_messages_start_no_answer(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    ts = await world.slack.post(world.alice, world.general, "a plain message")
    await world.slack.edit(world.general, ts, world.mention("now with a mention"))
    await world.slack.send_event(
        {
            "type": "message",
            "subtype": "channel_join",
            "channel": world.general,
            "user": world.bob,
            "text": world.mention("has joined the channel"),
            "ts": "1800000000.000001",
            "channel_type": "channel",
        }
    )
    await bot.idle()
    assert model_server.requests == []


async def test_deleting_a_prompt_with_its_answer_in_its_thread_stops_the_answer(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(SLOW)
    ts = await world.slack.post(world.alice, world.general, world.mention("write a lot"))
    await world.slack.wait_for(lambda: world.slack.bot_messages(world.general, thread_ts=ts))
    # The prompt has a reply (the answer), so Slack leaves a tombstone: a message_changed event.
    await world.slack.delete(world.general, ts)
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=ts)
    assert "Stopped" in reply.text
    assert not reply.streaming
    assert reply.text.count("word") < 400  # cut short, not written to the end


async def test_deleting_a_follow_up_while_it_is_answered_stops_that_answer(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="First answer."), SLOW)
    root = await world.slack.post(world.alice, world.general, world.mention("start"))
    await bot.idle()
    follow_up = await world.slack.post(world.alice, world.general, "and now write a lot", thread_ts=root)
    await world.slack.wait_for(lambda: len(world.slack.bot_messages(world.general, thread_ts=root)) == 2)
    await world.slack.delete(world.general, follow_up)  # a plain message_deleted event
    await bot.idle()
    replies = world.slack.bot_messages(world.general, thread_ts=root)
    assert "Stopped" in replies[-1].text
    assert replies[0].text.startswith("First answer.")


async def test_a_prompt_deleted_before_its_answer_starts_is_never_answered(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    # Looking up the asker's name is rate limited: the answer waits (Retry-After) before it starts.
    world.slack.fail_next("users.info", "ratelimited", status=429, retry_after=1)
    ts = await world.slack.post(world.alice, world.general, world.mention("never mind"))
    await world.slack.wait_for(lambda: world.slack.calls_to("users.info"))
    await world.slack.delete(world.general, ts)
    await bot.idle()
    assert model_server.requests == []
    assert world.slack.bot_messages(world.general) == []


async def test_with_other_bots_answered_its_own_replies_still_start_nothing(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_ignore_bots=False)
    root = await world.slack.post(world.alice, world.general, world.mention("hello"))
    await bot.idle()
    await world.slack.echoes_delivered()
    await bot.idle()
    # Its own messages in a thread it is part of came back as events, and no answer followed.
    assert any(d.payload.get("event", {}).get("bot_id") == BOT_ID for d in world.slack.deliveries)
    assert len(model_server.requests) == 1
    assert len(world.slack.bot_messages(world.general, thread_ts=root)) == 1


async def test_saying_stop_in_the_thread_stops_the_answer_being_written(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(SLOW)
    root = await world.slack.post(world.alice, world.general, world.mention("write a lot"))
    await world.slack.wait_for(lambda: world.slack.bot_messages(world.general, thread_ts=root))
    await world.slack.post(world.alice, world.general, "Stop!", thread_ts=root)
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=root)
    assert "Stopped" in reply.text
    assert reply.text.count("word") < 400
    assert len(model_server.requests) == 1  # "Stop!" itself was not sent to the model
