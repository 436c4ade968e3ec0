"""Tools on Discord: a tool with side effects waits for the asker's button, through discord.py against
the fake Discord, with the real MCP server of tests/fakes."""

from __future__ import annotations

from typing import Any

from tests.discord.conftest import StartBot, World
from tests.discord.test_messages import wait_answer
from tests.fakes.discord import EPHEMERAL, FakeDiscord
from tests.fakes.mcp_server import mcp_config
from tests.fakes.model_server import FakeModelServer, Script, tool_call, tool_round


def question(api: FakeDiscord, world: World) -> dict[str, Any] | None:
    return next((m for m in api.bot_messages(world.general) if m.get("components")), None)


def button(message: dict[str, Any], label: str) -> str:
    return next(
        b["custom_id"] for row in message["components"] for b in row["components"] if b["label"] == label
    )


async def test_only_the_askers_click_counts_and_the_question_says_who_decided(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "ship it"})), Script(content="Noted.")
    )
    bot = await start_bot(mcp_config=mcp_config(), tool_confirm_timeout_s=20)
    await api.user_message(world.general, world.alice, world.mention("note: ship it"))
    asked = await api.wait_for(lambda: question(api, world), what="the confirmation question")
    assert "fake__record_note" in asked["content"] and "ship it" in asked["content"]

    refused = await api.press(asked, world.bob, button(asked, "Approve"))
    [told] = await api.wait_for(
        lambda: [m for m in api.responses(refused) if m["content"]], what="a private note"
    )
    assert told["flags"] & EPHEMERAL and "Only the person who asked" in told["content"]

    await api.press(asked, world.alice, button(asked, "Approve"))
    await wait_answer(api, world.general, "Noted.")
    await bot.idle()
    decided = api.messages[int(asked["id"])]
    assert f"Approved by <@{world.alice['id']}>" in decided["content"] and decided["components"] == []
    tool_result = [m for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert tool_result[0]["content"] == "recorded note 1"


async def test_a_declined_tool_is_not_run(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    model_server.enqueue(
        tool_round(tool_call("fake__record_note", {"note": "no"})), Script(content="Not noted.")
    )
    bot = await start_bot(mcp_config=mcp_config(), tool_confirm_timeout_s=20)
    await api.user_message(world.general, world.alice, world.mention("note: no"))
    asked = await api.wait_for(lambda: question(api, world), what="the confirmation question")
    await api.press(asked, world.alice, button(asked, "Decline"))
    await bot.idle()
    assert "Declined by" in api.messages[int(asked["id"])]["content"]
    tool_result = [m for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "declined" in tool_result[0]["content"]


async def test_conversation_search_reads_this_channel_only(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot()
    await api.user_message(world.random, world.bob, "deploy secret plans elsewhere")
    await api.user_message(world.general, world.bob, "deploy went out at noon")
    await api.user_message(world.general, world.bob, "lunch?")
    model_server.enqueue(
        tool_round(tool_call("search_conversation", {"query": "deploy"})), Script(content="At noon.")
    )
    await api.user_message(world.general, world.alice, world.mention("when was the deploy?"))
    await wait_answer(api, world.general, "At noon.")
    [found] = [m["content"] for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "deploy went out at noon" in found and "lunch" not in found and "secret plans" not in found


async def test_conversation_search_reads_back_a_page_at_a_time_to_an_old_message(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    api.add_bot_message(world.general, "deploy went out at noon")
    for n in range(250):
        api.add_bot_message(world.general, f"chatter {n}")
    await start_bot()
    model_server.enqueue(
        tool_round(tool_call("search_conversation", {"query": "deploy"})), Script(content="At noon.")
    )
    await api.user_message(world.general, world.alice, world.mention("when was the deploy?"))
    await wait_answer(api, world.general, "At noon.")
    [found] = [m["content"] for m in model_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "deploy went out at noon" in found and "chatter" not in found
    # 252 messages (the question too), newest first: two full pages of 100, then the last one.
    pages = [
        r
        for r in api.requests
        if r.method == "GET" and r.path.endswith(f"/channels/{world.general['id']}/messages")
    ]
    assert len(pages) == 3


async def test_tools_lists_them_and_admins_switch_one_off_for_the_channel(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    from tests.discord.test_commands import command_reply, option

    await start_bot(discord_guild_ids=world.guild["id"])
    listed = await command_reply(world, world.alice, "tools")
    assert "fetch_url" in listed and "current_time" in listed
    assert "Only admins" in await command_reply(
        world, world.alice, "tools", option("action", "disable"), option("name", "fetch_url")
    )
    switched = await command_reply(
        world, world.boss, "tools", option("action", "disable"), option("name", "fetch_url")
    )
    assert "fetch_url" in switched
    model_server.enqueue(Script(content="ok"))
    await world.api.user_message(world.general, world.alice, world.mention("hello"))
    await wait_answer(world.api, world.general, "ok")
    offered = [tool["function"]["name"] for tool in model_server.requests[-1].body.get("tools", [])]
    assert "fetch_url" not in offered and "current_time" in offered
