"""Mentions, thread follow-ups, DMs, the assistant view and thread context, end to end over Socket Mode."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.conversation import PEOPLE_NAME_TTL_S, People
from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import BOT_TOKEN, BOT_USER_ID
from tests.slack.conftest import StartBot, World, model_prompt


async def test_a_mention_is_answered_in_the_thread_of_the_message(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="Paris is the capital of France.", reasoning="Geography."))
    ts = await world.slack.post(world.alice, world.general, world.mention("capital of France?"))
    await bot.idle()
    replies = world.slack.bot_messages(world.general, thread_ts=ts)
    assert len(replies) == 1
    assert replies[0].text.startswith("Paris is the capital of France.")
    assert not replies[0].streaming
    prompt = model_prompt(model_server)
    assert "capital of France?" in prompt
    assert f"<@{BOT_USER_ID}>" not in prompt
    # Slack sends both `app_mention` and `message` for it: still one answer.
    assert len(model_server.requests) == 1


async def test_later_messages_in_the_thread_continue_without_a_mention(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="It is 42."), Script(content="Because Deep Thought said so."))
    root = await world.slack.post(world.alice, world.general, world.mention("What is the answer?"))
    await bot.idle()
    await world.slack.post(world.bob, world.general, "why that number?", thread_ts=root)
    await bot.idle()
    assert len(model_server.requests) == 2
    follow_up = model_prompt(model_server)
    assert "What is the answer?" in follow_up and "It is 42." in follow_up and "why that number?" in follow_up
    texts = [m.text for m in world.slack.bot_messages(world.general, thread_ts=root)]
    assert texts[-1].startswith("Because Deep Thought said so.")


async def test_messages_elsewhere_without_a_mention_are_left_alone(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    strangers = await world.slack.post(world.alice, world.general, "just chatting")
    await world.slack.post(
        world.bob, world.general, "a reply in a thread without the bot", thread_ts=strangers
    )
    await bot.idle()
    assert model_server.requests == []
    assert world.slack.bot_messages(world.general) == []


async def test_with_mentions_required_a_thread_follow_up_needs_one(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot(slack_require_mention=True)
    root = await world.slack.post(world.alice, world.general, world.mention("first"))
    await bot.idle()
    await world.slack.post(world.alice, world.general, "no mention here", thread_ts=root)
    await bot.idle()
    assert len(model_server.requests) == 1
    await world.slack.post(world.alice, world.general, world.mention("with a mention"), thread_ts=root)
    await bot.idle()
    assert len(model_server.requests) == 2
    assert "with a mention" in model_prompt(model_server)


async def test_a_direct_message_is_answered_in_the_dm_and_the_dm_is_one_conversation(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    dm = world.slack.open_dm(world.alice)
    model_server.enqueue(Script(content="Hello Alice!"), Script(content="You said hi."))
    await world.slack.post(world.alice, dm, "hi there")
    await bot.idle()
    await world.slack.post(world.alice, dm, "what did I say?")
    await bot.idle()
    replies = world.slack.bot_messages(dm)
    assert [m.thread_ts for m in replies] == [None, None]
    assert replies[0].text.startswith("Hello Alice!") and replies[1].text.startswith("You said hi.")
    assert all(m.markdown for m in replies)
    assert "hi there" in model_prompt(model_server)


async def test_the_assistant_view_gets_prompts_a_title_a_status_and_a_streamed_answer(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    dm, thread = await world.slack.start_assistant_thread(world.alice)
    await bot.idle()
    assert world.slack.suggested_prompts and world.slack.suggested_prompts[0][:2] == (dm, thread)
    model_server.enqueue(Script(content="Here is a plan.", reasoning="Let me plan this carefully."))
    await world.slack.post(world.alice, dm, "Plan my week\nwith details", thread_ts=thread)
    await bot.idle()
    assert world.slack.titles == [(dm, thread, "Plan my week")]
    statuses = [status for channel, ts, status in world.slack.statuses if (channel, ts) == (dm, thread)]
    assert statuses[0].startswith("Thinking") and statuses[-1] == ""
    [reply] = world.slack.bot_messages(dm, thread_ts=thread)
    assert reply.text.startswith("Here is a plan.")
    assert world.slack.calls_to("chat.startStream")
    # The thinking line lives in the status, never in the message.
    assert "Thinking" not in reply.text


async def test_a_mention_in_an_existing_thread_brings_the_earlier_human_messages(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    root = await world.slack.post(world.bob, world.general, "Should we ship on Friday?")
    await world.slack.post(world.alice, world.general, "I'd rather ship Monday", thread_ts=root)
    await world.slack.post(world.robot, world.general, "beep: build 1234 passed", thread_ts=root)
    await world.slack.post(world.alice, world.general, world.mention("what do you think?"), thread_ts=root)
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "Should we ship on Friday?" in prompt and "I'd rather ship Monday" in prompt
    assert "beep" not in prompt  # other bots are not part of the human conversation
    assert world.slack.bot_messages(world.general, thread_ts=root)


async def test_thread_context_is_bounded_to_the_latest_messages(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    root = await world.slack.post(world.bob, world.general, "message-00")
    for n in range(1, 60):
        await world.slack.post(world.bob, world.general, f"message-{n:02d}", thread_ts=root)
    await world.slack.post(world.alice, world.general, world.mention("sum it up"), thread_ts=root)
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "message-59" in prompt and "message-20" in prompt
    assert "message-00" not in prompt and "message-19" not in prompt
    [replies_call] = world.slack.calls_to("conversations.replies")
    assert int(replies_call.args["limit"]) <= 200


async def test_people_mentioned_in_a_prompt_reach_the_model_by_name_whatever_their_name(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    # Backslashes in a display name are plain text, not regex escapes.
    odd = world.slack.add_user(r"dominic\1\g<0>\d")
    prompt = world.mention(f"say hi to <@{odd}> and <@{world.bob}>")
    await world.slack.post(world.alice, world.general, prompt)
    await bot.idle()
    prompt = model_prompt(model_server)
    assert r"say hi to @Dominic\1\G<0>\D and @Bob" in prompt
    assert world.slack.bot_messages(world.general)


async def test_in_a_thread_longer_than_one_page_the_context_is_its_latest_messages(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    root = world.slack.add_message(world.general, "message-000", user=world.bob).ts
    for n in range(1, 450):
        world.slack.add_message(world.general, f"message-{n:03d}", user=world.bob, thread_ts=root)
    await world.slack.post(world.alice, world.general, world.mention("sum it up"), thread_ts=root)
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "message-449" in prompt and "message-410" in prompt
    assert "message-409" not in prompt and "message-199" not in prompt
    assert len(world.slack.calls_to("conversations.replies")) == 3  # 200 + 200 + 51, and no more


async def test_a_thread_slack_will_not_show_is_answered_without_its_context(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    root = await world.slack.post(world.bob, world.general, "an older message")
    world.slack.fail_next("conversations.replies", "thread_not_found")
    await world.slack.post(world.alice, world.general, world.mention("still there?"), thread_ts=root)
    await bot.idle()
    prompt = model_prompt(model_server)
    assert "still there?" in prompt and "an older message" not in prompt
    assert world.slack.bot_messages(world.general, thread_ts=root)


async def test_someone_who_renames_themselves_is_called_by_the_new_name_within_the_hour(world: World) -> None:
    now = 0.0
    people = People(AsyncWebClient(token=BOT_TOKEN, base_url=world.slack.api_url), clock=lambda: now)
    assert await people.name(world.alice) == "Alice"
    world.slack.users[world.alice]["profile"]["display_name"] = "Ali"
    now = PEOPLE_NAME_TTL_S - 1
    assert await people.name(world.alice) == "Alice"  # remembered: no users.info on every message
    now = PEOPLE_NAME_TTL_S + 1
    assert await people.name(world.alice) == "Ali"
    assert [call.method for call in world.slack.calls].count("users.info") == 2
