"""Tools on Slack: a tool with side effects waits for the asker's Block Kit click, through the real
slack-bolt against the fake Slack, with the real MCP server of tests/fakes."""

from __future__ import annotations

from tests.fakes.mcp_server import mcp_config
from tests.fakes.model_server import FakeModelServer, Script, tool_call, tool_round
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import StartBot, World

APPROVE, DECLINE = "seed_confirm_approve", "seed_confirm_decline"


def question(slack: FakeSlack, channel: str) -> tuple[str, str]:
    """(ts, request id) of the confirmation question the bot posted."""
    for call in slack.calls_to("chat.postMessage"):
        for block in call.args.get("blocks") or []:
            if block.get("type") == "actions":
                posted = [m for m in slack.channels[channel].messages if m.ts and m.bot_id]
                [message] = [m for m in posted if m.text == call.args["text"] or "Run fake__" in m.text]
                return message.ts, block["elements"][0]["value"]
    raise AssertionError("no confirmation question was posted")


async def ask_for_a_note(world: World, model_server: FakeModelServer) -> str:
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "buy milk"})), Script(content="Noted.")
    )
    return await world.slack.post(world.alice, world.general, world.mention("note: buy milk"))


async def test_the_asker_approves_and_the_tool_runs(start_bot: StartBot, world: World, model_server):
    bot = await start_bot(mcp_config=mcp_config(), tool_confirm_timeout_s=20)
    prompt = await ask_for_a_note(world, model_server)
    ts, request_id = await world.slack.wait_for(lambda: _question_or_none(world.slack, world.general), 20)
    await world.slack.click(world.bob, world.general, ts, APPROVE, request_id)  # not the asker
    await world.slack.wait_for(lambda: world.slack.ephemerals_for(world.bob), 10)
    assert [n.text for n in world.slack.ephemerals_for(world.bob)] == [
        "Only the person who asked can approve or decline this."
    ]
    await world.slack.click(world.alice, world.general, ts, APPROVE, request_id)
    await bot.idle()
    edited = world.slack.message(world.general, ts)
    assert edited is not None and f"Approved by <@{world.alice}>" in edited.text and "UTC" in edited.text
    tool_result = [m for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert tool_result[0]["content"] == "recorded note 1"
    answer = world.slack.bot_messages(world.general, thread_ts=prompt)[-1].text
    assert "Noted." in answer and "1 tool call" in answer


async def test_no_click_in_time_declines_and_the_model_is_told(
    start_bot: StartBot, world: World, model_server
):
    bot = await start_bot(mcp_config=mcp_config(), tool_confirm_timeout_s=0.5)
    await ask_for_a_note(world, model_server)
    await bot.idle()
    ts, _ = question(world.slack, world.general)
    edited = world.slack.message(world.general, ts)
    assert edited is not None and "Not confirmed in time" in edited.text
    tool_result = [m for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "did not confirm in time" in tool_result[0]["content"]


def _question_or_none(slack: FakeSlack, channel: str) -> tuple[str, str] | None:
    try:
        return question(slack, channel)
    except AssertionError:
        return None


async def test_tool_steps_are_native_task_cards_in_the_stream(
    start_bot: StartBot, world: World, model_server
):
    bot = await start_bot()
    model_server.enqueue(
        # Written slowly enough that its stream is open when the tool runs.
        tool_round(
            tool_call("current_time", {}), content="Let me look at the clock.", chunk_chars=4, delay_s=0.1
        ),
        Script(content="It is late."),
    )
    prompt = await world.slack.post(world.alice, world.general, world.mention("what time is it?"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=prompt)
    [card] = reply.tasks.values()
    assert card["status"] == "complete" and card["title"] and card.get("output")
    assert "It is late." in reply.text and not reply.streaming


async def test_a_workspace_that_refuses_task_cards_is_not_asked_again_and_the_answer_goes_on(
    start_bot: StartBot, world: World, model_server
):
    bot = await start_bot()
    world.slack.task_cards_refusal = "invalid_chunks"
    slow = {"chunk_chars": 4, "delay_s": 0.1}
    model_server.enqueue(
        tool_round(tool_call("current_time", {}), tool_call("current_time", {}), content="Checking.", **slow),
        Script(content="It is late."),
    )
    prompt = await world.slack.post(world.alice, world.general, world.mention("what time is it?"))
    await bot.idle()
    [reply] = world.slack.bot_messages(world.general, thread_ts=prompt)
    assert reply.tasks == {} and "It is late." in reply.text and "2 tool calls" in reply.text
    carded = [c for c in world.slack.calls_to("chat.appendStream") if c.args.get("chunks")]
    # Only the two calls' first cards were tried (at once); once refused, the core shows the steps.
    assert carded and all(c.args["chunks"][0]["status"] == "in_progress" for c in carded)


async def test_conversation_search_reads_this_thread_only(start_bot: StartBot, world: World, model_server):
    bot = await start_bot()
    await world.slack.post(world.bob, world.random, "deploy secret plans elsewhere")  # another channel
    root = await world.slack.post(world.bob, world.general, "deploy went out at noon")
    await world.slack.post(world.bob, world.general, "lunch?", thread_ts=root)
    model_server.enqueue(
        tool_round(tool_call("search_conversation", {"query": "deploy"})), Script(content="At noon.")
    )
    await world.slack.post(world.alice, world.general, world.mention("when was the deploy?"), thread_ts=root)
    await bot.idle()
    [found] = [m["content"] for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "deploy went out at noon" in found and "lunch" not in found and "secret plans" not in found
