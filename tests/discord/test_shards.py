"""Sharding in one process: DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS against the fake gateway, which
routes each guild to shard (guild_id >> 22) % count and DMs to shard 0 as Discord does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bots.discord import DiscordRunner, DiscordStartupError
from core.config import ConfigError, Settings, load_settings
from core.service import ChatService
from tests.discord.conftest import StartBot
from tests.fakes.discord import BOT_TOKEN, FakeDiscord
from tests.fakes.model_server import FakeModelServer, Script


@dataclass
class TwoShards:
    """A server on each shard of two, and alice in both."""

    api: FakeDiscord
    on_0: dict[str, Any]  # a channel of the server on shard 0
    on_1: dict[str, Any]  # a channel of the server on shard 1
    alice: dict[str, Any]

    def mention(self, text: str) -> str:
        return f"<@{self.api.bot_id}> {text}"


@pytest.fixture
def shards(discord_api: FakeDiscord) -> TwoShards:
    alice = discord_api.add_user("alice")
    channels = []
    for shard_id in (0, 1):
        guild = discord_api.add_guild(f"Server {shard_id}", shard=(shard_id, 2))
        assert (int(guild["id"]) >> 22) % 2 == shard_id
        discord_api.add_member(guild, alice)
        channels.append(discord_api.add_channel(guild, "general"))
    return TwoShards(discord_api, channels[0], channels[1], alice)


async def answered(api: FakeDiscord, channel: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The bot's messages in `channel`, once one of them is a finished answer holding `text`."""
    await api.wait_for(
        lambda: any(text in m["content"] and "effort" in m["content"] for m in api.bot_messages(channel)),
        what=f"an answer with {text!r}",
    )
    return api.bot_messages(channel)


async def test_one_process_on_both_shards_answers_the_servers_of_each_and_dms(
    shards: TwoShards, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = shards.api
    bot = await start_bot(discord_shard_count=2)
    assert sorted(session.shard for session in api.gateway.live.values()) == [(0, 2), (1, 2)]
    assert bot.runner.shard_readiness() == {"0": True, "1": True}
    assert bot.runner.ready()

    model_server.enqueue(Script(content="From shard zero."))
    await api.user_message(shards.on_0, shards.alice, shards.mention("hi"))
    assert len(await answered(api, shards.on_0, "From shard zero.")) == 1
    model_server.enqueue(Script(content="From shard one."))
    await api.user_message(shards.on_1, shards.alice, shards.mention("hi"))
    assert len(await answered(api, shards.on_1, "From shard one.")) == 1
    model_server.enqueue(Script(content="In private."))
    dm = api.dm_channel(shards.alice)
    await api.user_message(dm, shards.alice, "hello")
    assert len(await answered(api, dm, "In private.")) == 1
    assert len(model_server.requests) == 3


async def test_a_process_on_shard_1_gets_only_that_shards_server(
    shards: TwoShards, start_bot: StartBot, model_server: FakeModelServer
) -> None:
    api = shards.api
    bot = await start_bot(discord_shard_count=2, discord_shard_ids="1")
    assert [session.shard for session in api.gateway.live.values()] == [(1, 2)]
    assert {guild.name for guild in bot.runner.client.guilds} == {"Server 1"}

    # Sent first, but to shards nobody runs: Discord (the fake) delivers them to no one.
    await api.user_message(shards.on_0, shards.alice, shards.mention("anyone?"))
    await api.user_message(api.dm_channel(shards.alice), shards.alice, "anyone?")
    model_server.enqueue(Script(content="Shard one here."))
    await api.user_message(shards.on_1, shards.alice, shards.mention("hi"))
    await answered(api, shards.on_1, "Shard one here.")
    assert api.bot_messages(shards.on_0) == [] and api.bot_messages(api.dm_channel(shards.alice)) == []
    assert len(model_server.requests) == 1


@pytest.mark.parametrize("discord_api", [{"recommended_shards": 2}], indirect=True)
async def test_auto_takes_the_shard_count_from_gateway_bot_even_with_a_gateway_url(
    shards: TwoShards, start_bot: StartBot
) -> None:
    api = shards.api
    bot = await start_bot(discord_shard_count="auto", discord_gateway_url=api.gateway_url)
    assert ("GET", "/api/v10/gateway/bot") in [(r.method, r.path) for r in api.requests]
    assert sorted(session.shard for session in api.gateway.live.values()) == [(0, 2), (1, 2)]
    assert bot.runner.shard_readiness() == {"0": True, "1": True}


@pytest.mark.parametrize("discord_api", [{"recommended_shards": 2}], indirect=True)
async def test_auto_with_ids_beyond_the_recommendation_is_a_one_line_error(
    discord_api: FakeDiscord, start_bot: StartBot
) -> None:
    with pytest.raises(DiscordStartupError) as refused:
        await start_bot(discord_shard_count="auto", discord_shard_ids="2")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("DISCORD_SHARD_IDS lists shard 2, but Discord recommends 2 shards")
    assert discord_api.gateway.identifies == 0


async def test_ready_only_once_every_shard_of_the_process_is_connected(
    shards: TwoShards, make_settings: Callable[..., Settings]
) -> None:
    api = shards.api
    settings = make_settings(
        discord_bot_token=BOT_TOKEN, discord_api_base=api.api_base, discord_shard_count=2
    )
    service = await ChatService.open(settings)
    runner = DiscordRunner(settings, service, guild_ready_timeout=0.05)
    release = api.gateway.hold(1)
    starting = asyncio.create_task(runner.start(ready_timeout_s=20))
    try:
        # Shard 0 is up; shard 1's IDENTIFY is unanswered: both are shown, and the bot is not ready.
        await api.wait_for(
            lambda: starting.done() or runner.shard_readiness() == {"0": True, "1": False},
            what="shard 0 to connect",
        )
        assert not starting.done()
        assert not runner.ready()
        release.set()
        await asyncio.wait_for(starting, 20)
        assert runner.shard_readiness() == {"0": True, "1": True}
        assert runner.ready()
    finally:
        await runner.stop(grace_s=1)
        await service.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT: must be a number of shards (1 or more) or auto"),
        (
            {"DISCORD_SHARD_COUNT": "two"},
            "DISCORD_SHARD_COUNT: must be a number of shards (1 or more) or auto",
        ),
        ({"DISCORD_SHARD_IDS": "0"}, "DISCORD_SHARD_IDS: needs DISCORD_SHARD_COUNT (a number, or auto)"),
        (
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1,2"},
            "DISCORD_SHARD_IDS: shard ids go from 0 to 1 with DISCORD_SHARD_COUNT=2",
        ),
        (
            {"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "0,x"},
            "DISCORD_SHARD_IDS: must be comma-separated shard numbers, e.g. 0,1",
        ),
        ({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "1,1"}, "DISCORD_SHARD_IDS: lists a shard twice"),
    ],
)
def test_bad_shard_settings_are_one_line_errors_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None)
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith(expected)


@pytest.mark.parametrize(
    ("env", "count", "ids"),
    [
        ({}, None, ()),
        ({"DISCORD_SHARD_COUNT": "Auto"}, "auto", ()),
        ({"DISCORD_SHARD_COUNT": "3", "DISCORD_SHARD_IDS": " 2, 0"}, 3, (2, 0)),
    ],
)
def test_shard_settings_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], count: object, ids: tuple[int, ...]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert (settings.discord_shard_count, settings.discord_shard_ids) == (count, ids)
