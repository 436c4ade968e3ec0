"""Allowlists (guilds, channels, roles) and who counts as an admin."""

from __future__ import annotations

import pytest

from tests.discord.conftest import StartBot, World
from tests.discord.test_commands import option
from tests.discord.test_messages import wait_answer
from tests.fakes.model_server import FakeModelServer, Script

NOT_ENABLED = "isn't enabled here"


async def test_channel_allowlist_answers_inside_and_says_so_once_outside(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_allowed_channels=world.general["id"])
    await api.user_message(world.random, world.alice, world.mention("hello?"))
    await api.user_message(world.random, world.alice, world.mention("hello again?"))
    await api.user_message(world.general, world.alice, world.mention("in the right place"))
    await wait_answer(api, world.general, "in the right place")
    notices = [m for m in api.bot_messages(world.random) if NOT_ENABLED in m["content"]]
    assert len(notices) == 1
    assert notices[0]["mentions"] == []
    assert len(model_server.requests) == 1


async def test_threads_follow_their_parent_channel_allowlist(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    thread = api.add_thread(world.general, "ideas", owner=world.alice)
    await start_bot(discord_allowed_channels=world.general["id"])
    await api.user_message(thread, world.alice, world.mention("in a thread of an allowed channel"))
    await wait_answer(api, thread, "allowed channel")


async def test_guild_allowlist_refuses_other_servers(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    elsewhere = api.add_guild("Elsewhere")
    lobby = api.add_channel(elsewhere, "lobby")
    api.add_member(elsewhere, world.alice)
    await start_bot(discord_allowed_guilds=world.guild["id"])
    await api.user_message(lobby, world.alice, world.mention("hi from elsewhere"))
    await api.wait_for(lambda: api.bot_messages(lobby), what="the refusal")
    assert NOT_ENABLED in api.bot_messages(lobby)[0]["content"]
    assert model_server.requests == []


async def test_role_allowlist_admits_the_role_and_admins(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    testers = api.add_role(world.guild, "testers")
    api.add_member(world.guild, world.bob, roles=[testers])
    await start_bot(discord_allowed_roles=testers["id"])
    await api.user_message(world.general, world.alice, world.mention("no role"))
    await api.user_message(world.general, world.bob, world.mention("tester here"))
    await wait_answer(api, world.general, "tester here")
    await api.user_message(world.general, world.boss, world.mention("manager here"))
    await wait_answer(api, world.general, "manager here")  # Manage Server counts as admin
    texts = [m["content"] for m in api.bot_messages(world.general)]
    assert sum(NOT_ENABLED in text for text in texts) == 1
    assert len(model_server.requests) == 2


@pytest.mark.parametrize(
    "allowlist", ["discord_allowed_roles", "discord_allowed_channels", "discord_allowed_guilds"]
)
async def test_dms_close_to_non_admins_when_any_allowlist_is_set(
    world: World, start_bot: StartBot, model_server: FakeModelServer, allowlist: str
) -> None:
    api = world.api
    listed = {
        "discord_allowed_roles": api.add_role(world.guild, "testers")["id"],
        "discord_allowed_channels": world.general["id"],
        "discord_allowed_guilds": world.guild["id"],
    }[allowlist]
    await start_bot(**{allowlist: listed}, admins=world.bob["id"])
    alice_dm, bob_dm = api.dm_channel(world.alice), api.dm_channel(world.bob)
    await api.user_message(alice_dm, world.alice, "hi")
    await api.user_message(bob_dm, world.bob, "hi, I am an admin")
    await wait_answer(api, bob_dm, "I am an admin")
    await api.wait_for(lambda: api.bot_messages(alice_dm), what="the refusal")
    assert NOT_ENABLED in api.bot_messages(alice_dm)[0]["content"]
    assert len(model_server.requests) == 1


async def test_anyone_may_have_their_data_forgotten_outside_the_allowlist_but_not_ask(
    world: World, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = world.api
    await start_bot(discord_allowed_channels=world.general["id"], discord_guild_ids=world.guild["id"])
    model_server.enqueue(Script(content="Stored and answered."))
    await api.user_message(world.general, world.alice, world.mention("remember this"))
    await wait_answer(api, world.general, "Stored and answered.")
    forget = await api.invoke_command(world.random, world.alice, "forget")
    done = await api.wait_for(
        lambda: [m for m in api.responses(forget) if "deleted" in m["content"]], what="/forget"
    )
    assert "deleted 0" not in done[0]["content"]
    ask = await api.invoke_command(world.random, world.alice, "ask", [option("prompt", "and now?")])
    await api.wait_for(
        lambda: [m for m in api.responses(ask) if NOT_ENABLED in m["content"]], what="/ask refused"
    )
    assert len(model_server.requests) == 1
