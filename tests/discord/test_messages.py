"""Conversations from messages: mentions, reply chains, DMs, threads, who is ignored, stopping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.discord.conftest import StartBot, World, last_user_text
from tests.fakes.discord import FakeDiscord
from tests.fakes.model_server import FakeModelServer, Script


def finished(api: FakeDiscord, channel: dict[str, Any], text: str, count: int = 1) -> list[dict[str, Any]]:
    """The bot's messages in `channel` once `count` of them contain `text` and a footer."""
    done = [m for m in api.bot_messages(channel) if text in m["content"] and "effort" in m["content"]]
    return done if len(done) >= count else []


async def wait_answer(api: FakeDiscord, channel: dict[str, Any], text: str, count: int = 1) -> dict[str, Any]:
    done = await api.wait_for(lambda: finished(api, channel, text, count), what=f"an answer with {text!r}")
    return done[-1]


async def test_mention_is_answered_as_a_reply_streamed_by_edits_without_429s(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    answer = " ".join(f"word{i}" for i in range(20))
    model_server.enqueue(
        Script(reasoning="Let me think about this. " * 2, content=answer, chunk_chars=8, delay_s=0.05)
    )
    await start_bot()
    prompt = await api.user_message(world.general, world.alice, world.mention("tell me a story"))
    reply = await wait_answer(api, world.general, answer)
    assert reply["message_reference"]["message_id"] == prompt["id"]
    assert reply["_edits"] >= 2  # it grew in place rather than arriving in one piece
    assert api.rate_limited == []
    assert api.typing.get(int(world.general["id"]), 0) >= 1  # typing shown while it reasoned
    written = [
        r.body["content"]
        for r in api.requests
        if r.path.startswith(f"/api/v10/channels/{world.general['id']}/messages")
        and r.status == 200
        and isinstance(r.body, dict)
        and "content" in r.body
    ]
    assert "Thinking…" in written[0] and answer not in written[0]  # a thinking line came first
    assert "tell me a story" in last_user_text(model_server)
    assert f"<@{api.bot_id}>" not in last_user_text(model_server)
    assert len(api.bot_messages(world.general)) == 1


async def test_replies_ping_only_the_asker_whatever_the_model_writes(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    content = (
        f"Hey @everyone and @here, <@&{world.mods['id']}>, <@{world.bob['id']}> and <@{world.alice['id']}>!"
    )
    model_server.enqueue(Script(content=content))
    await start_bot()
    await api.user_message(world.general, world.alice, world.mention("ping people"))
    reply = await wait_answer(api, world.general, "Hey @everyone")
    assert reply["mention_everyone"] is False
    assert reply["mention_roles"] == []
    assert [user["id"] for user in reply["mentions"]] == [world.alice["id"]]


async def test_replying_to_the_bot_continues_the_conversation_without_a_mention(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(
        Script(content="Paris is the capital of France."), Script(content="About 2.1 million.")
    )
    await start_bot()
    await api.user_message(world.general, world.alice, world.mention("What is the capital of France?"))
    first = await wait_answer(api, world.general, "Paris")
    await api.user_message(world.general, world.bob, "And its population?", reply_to=first, reply_ping=False)
    second = await wait_answer(api, world.general, "2.1 million")
    assert second["message_reference"]["message_id"] != first["id"]  # replies to bob's message
    context = last_user_text(model_server)
    assert "What is the capital of France?" in context
    assert "Paris is the capital of France." in context
    assert "And its population?" in context


async def test_people_replying_to_each_other_under_a_question_are_not_answered(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    bot = await start_bot()
    question = await api.user_message(world.general, world.alice, world.mention("Is it Friday?"))
    await wait_answer(api, world.general, "Is it Friday?")
    await api.user_message(world.general, world.bob, "I wondered too", reply_to=question)
    # The gateway keeps order: once this is answered, the bot has seen the reply above.
    await api.user_message(world.general, world.bob, world.mention("and now?"))
    await wait_answer(api, world.general, "and now?")
    await bot.idle()
    assert len(model_server.requests) == 2
    assert "I wondered too" not in last_user_text(model_server)


async def test_a_mention_in_a_reply_chain_brings_the_unstored_chain_as_context(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot()
    root = await api.user_message(world.general, world.alice, "The deploy failed with exit code 137.")
    middle = await api.user_message(world.general, world.bob, "Out of memory again?", reply_to=root)
    await api.user_message(world.general, world.alice, world.mention("what do you think?"), reply_to=middle)
    await wait_answer(api, world.general, "Echo")
    context = last_user_text(model_server)
    assert "exit code 137" in context  # fetched from the API: not in the reply's payload
    assert ("GET", f"/api/v10/channels/{world.general['id']}/messages/{root['id']}") in [
        (r.method, r.path) for r in api.requests
    ]
    assert "Out of memory again?" in context
    assert len(model_server.requests) == 1  # the two earlier messages were not answered


async def test_other_peoples_mentions_reach_the_model_as_names_whatever_they_contain(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    odd = api.add_user(r"back\1slash")
    api.add_member(world.guild, odd)
    await start_bot()
    await api.user_message(world.general, world.alice, world.mention(f"what did <@{odd['id']}> mean?"))
    await wait_answer(api, world.general, "Echo")
    assert r"what did @Back\1Slash mean?" in last_user_text(model_server)


async def test_direct_messages_are_a_conversation(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    dm = api.dm_channel(world.alice)
    model_server.enqueue(Script(content="Noted: your name is Alice."), Script(content="You are Alice."))
    await start_bot()
    await api.user_message(dm, world.alice, "My name is Alice.")
    await wait_answer(api, dm, "Noted")
    await api.user_message(dm, world.alice, "What is my name?")
    await wait_answer(api, dm, "You are Alice.")
    assert "My name is Alice." in last_user_text(model_server)


async def test_threads_the_bot_was_mentioned_in_need_no_further_mention(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    thread = api.add_thread(world.general, "planning", owner=world.alice)
    other = api.add_thread(world.general, "chatter", owner=world.bob)
    model_server.enqueue(Script(content="Step one: gather."), Script(content="Step two: build."))
    await start_bot()
    await api.user_message(thread, world.alice, world.mention("plan the launch"))
    await wait_answer(api, thread, "Step one")
    await api.user_message(other, world.bob, "unrelated chatter")
    await api.user_message(thread, world.bob, "and then?")
    await wait_answer(api, thread, "Step two")
    assert "plan the launch" in last_user_text(model_server)
    assert len(model_server.requests) == 2
    assert api.bot_messages(other) == []


async def test_thread_per_conversation_opens_a_thread_and_follow_ups_need_no_mention(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(Script(content="Let's plan it."), Script(content="Then we ship."))
    await start_bot(discord_thread_per_conversation=True)
    prompt = await api.user_message(
        world.general, world.alice, world.mention("Plan the release\nwith details")
    )
    thread = await api.wait_for(lambda: api.channels.get(int(prompt["id"])), what="the thread")
    assert thread["type"] == 11 and thread["name"] == "Plan the release"
    await wait_answer(api, thread, "Let's plan it.")
    assert api.bot_messages(world.general) == []  # the answer went into the thread
    await api.user_message(thread, world.alice, "what next?")
    await wait_answer(api, thread, "Then we ship.")
    assert "Plan the release" in last_user_text(model_server)


async def test_own_messages_other_bots_and_unaddressed_messages_are_ignored(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    bot = await start_bot()
    await api.user_message(world.general, world.other_bot, world.mention("bots talking to bots"))
    await api.user_message(world.general, world.bob, "just chatting, no mention")
    await api.user_message(world.general, world.alice, world.mention("only me"))
    await wait_answer(api, world.general, "only me")
    await bot.idle()
    # The bot's own reply came back through the gateway too and was not answered.
    assert len(model_server.requests) == 1
    assert len(api.bot_messages(world.general)) == 1


@pytest.mark.parametrize("how", ["by its author", "in a moderator's bulk delete"])
async def test_deleting_the_prompt_stops_the_answer(
    world: World, start_bot: StartBot, model_server: FakeModelServer, how: str
) -> None:
    api = world.api
    long_answer = "never finished " * 200
    model_server.enqueue(Script(content=long_answer, chunk_chars=5, delay_s=0.02))
    await start_bot()
    other = await api.user_message(world.general, world.bob, "unrelated chatter")
    prompt = await api.user_message(world.general, world.alice, world.mention("write a lot"))
    await api.wait_for(lambda: any("never" in m["content"] for m in api.bot_messages(world.general)))
    if how == "by its author":
        await api.delete_by_user(prompt)
    else:
        await api.bulk_delete(world.general, [other, prompt])
    await api.wait_for(
        lambda: model_server.requests[0].disconnected.is_set(), what="the model stream to close"
    )
    reply = api.bot_messages(world.general)[0]
    assert long_answer.strip() not in reply["content"]


async def test_replying_stop_to_the_answer_being_written_stops_it(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    long_answer = "never finished " * 200
    model_server.enqueue(Script(content=long_answer, chunk_chars=5, delay_s=0.02))
    bot = await start_bot()
    await api.user_message(world.general, world.alice, world.mention("write a lot"))
    await api.wait_for(lambda: any("never" in m["content"] for m in api.bot_messages(world.general)))
    answer = api.bot_messages(world.general)[0]
    await api.user_message(world.general, world.alice, "stop", reply_to=answer)
    await api.wait_for(
        lambda: model_server.requests[0].disconnected.is_set(), what="the model stream to close"
    )
    assert await bot.runner.idle(10)
    reply = api.bot_messages(world.general)[0]
    assert "Stopped" in reply["content"] and long_answer.strip() not in reply["content"]
    assert len(model_server.requests) == 1  # "stop" itself was not sent to the model


async def test_a_prompt_deleted_while_its_reply_chain_is_read_is_not_answered(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    bot = await start_bot()
    root = await api.user_message(world.general, world.bob, "The build is red.")
    middle = await api.user_message(world.general, world.bob, "Since this morning.", reply_to=root)
    fetching = api.hold("GET /channels/{channel}/messages/{message}")
    prompt = await api.user_message(world.general, world.alice, world.mention("why?"), reply_to=middle)
    await asyncio.wait_for(fetching.reached.wait(), 10)  # the bot is reading the chain above `prompt`
    await api.delete_by_user(prompt)
    # The gateway keeps order: once this is answered, the bot has seen the deletion.
    await api.user_message(world.general, world.bob, world.mention("still there?"))
    await wait_answer(api, world.general, "still there?")
    fetching.release()
    await bot.idle()
    assert len(model_server.requests) == 1
    assert "why?" not in last_user_text(model_server)
