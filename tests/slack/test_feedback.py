"""👍 / 👎 on Slack: the finished answer gets a context_actions block of feedback_buttons in one
chat.update, and a press (through the real slack-bolt) is stored against the answer's message."""

from __future__ import annotations

from typing import Any

from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import TEAM_ID, Message
from tests.slack.conftest import StartBot, World

FEEDBACK = "seed_feedback"


def feedback_buttons(message: Message) -> dict[str, Any]:
    [block] = [block for block in message.blocks if block["type"] == "context_actions"]
    [element] = block["elements"]
    assert element["type"] == "feedback_buttons" and element["action_id"] == FEEDBACK
    return element


async def test_a_finished_answer_gets_feedback_buttons_and_presses_are_stored(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(content="Paris is the capital of France.", usd=0.0042))
    prompt = await world.slack.post(world.alice, world.general, world.mention("capital of France?"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=prompt)
    assert reply.text.startswith("Paris is the capital of France.")
    [markdown] = [block for block in reply.blocks if block["type"] == "markdown"]
    assert markdown["text"] == reply.text  # the answer and its footer, as streamed
    buttons = feedback_buttons(reply)
    [update] = world.slack.calls_to("chat.update")  # the buttons cost one update, no more
    assert update.args["ts"] == reply.ts

    up, down = buttons["positive_button"]["value"], buttons["negative_button"]["value"]
    await world.slack.click(world.bob, world.general, reply.ts, FEEDBACK, up)
    await world.slack.click(world.alice, world.general, reply.ts, FEEDBACK, up)
    await bot.idle()
    await world.slack.click(world.alice, world.general, reply.ts, FEEDBACK, down)  # changed her mind
    await bot.idle()

    store = bot.service.store
    [disliked] = await store.disliked_answers()
    assert (disliked.platform, disliked.workspace, disliked.channel) == ("slack", TEAM_ID, world.general)
    assert (disliked.platform_message_id, disliked.user) == (reply.ts, world.alice)
    assert (disliked.effort, disliked.tool_calls, str(disliked.usd)) == ("medium", 0, "0.0042")
    stored_reply = await store.find_by_platform_message("slack", reply.ts)
    assert stored_reply is not None and disliked.reply_id == stored_reply.id
    [rate] = await store.feedback_rates("channel")
    assert (rate.key, rate.up, rate.down) == (world.general, 1, 1)
    assert [n.text for n in world.slack.ephemerals_for(world.bob)] == ["Thanks for the 👍."]
    assert world.slack.ephemerals_for(world.alice)[-1].text.startswith("Thanks for the 👎")


async def test_an_answer_that_failed_gets_no_buttons(
    start_bot: StartBot, world: World, model_server: FakeModelServer
):
    bot = await start_bot()
    model_server.enqueue(Script(status=400, error_message="upstream broke"))
    prompt = await world.slack.post(world.alice, world.general, world.mention("hello?"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=prompt)
    assert "upstream broke" in reply.text
    assert not [block for block in reply.blocks if block["type"] == "context_actions"]
