"""Connecting: REST base and gateway from settings, intents, invite URL, heartbeats, command sync,
and clear one-line start-up errors."""

from __future__ import annotations

import logging
import re
import socket
from urllib.parse import parse_qs, urlparse

import pytest

from bots.discord import DiscordStartupError
from tests.discord.conftest import StartBot, World
from tests.fakes.discord import APPLICATION_ID, FakeDiscord
from tests.fakes.discord_gateway import DIRECT_MESSAGES, GUILD_MESSAGES, GUILDS, MESSAGE_CONTENT

COMMANDS = {"ask", "effort", "cost", "summarize", "forget", "help", "Summarize", "budget", "prompt", "tools"}
VIEW, SEND, HISTORY, SEND_IN_THREADS, CREATE_PUBLIC_THREADS = 1 << 10, 1 << 11, 1 << 16, 1 << 38, 1 << 35


async def test_connects_with_the_needed_intents_and_finds_the_gateway_through_the_api(
    world: World, start_bot: StartBot
) -> None:
    bot = await start_bot()
    api = world.api
    assert bot.runner.ready()
    assert ("GET", "/api/v10/gateway/bot") in [(r.method, r.path) for r in api.requests]
    assert api.gateway.current is not None
    assert api.gateway.current.intents == GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT
    # Everything went to the configured base: the fake saw the login and the gateway.
    assert ("GET", "/api/v10/users/@me") in [(r.method, r.path) for r in api.requests]
    assert api.gateway.identifies == 1


async def test_gateway_url_setting_skips_discovery(world: World, start_bot: StartBot) -> None:
    await start_bot(discord_gateway_url=world.api.gateway_url)
    assert all(r.path != "/api/v10/gateway/bot" for r in world.api.requests)
    assert world.api.gateway.identifies == 1


async def test_commands_sync_to_the_listed_guilds(world: World, start_bot: StartBot) -> None:
    await start_bot(discord_guild_ids=world.guild["id"])
    guild_commands = world.api.commands[int(world.guild["id"])]
    assert {command["name"] for command in guild_commands} == COMMANDS
    assert None not in world.api.commands  # nothing global
    ask = next(command for command in guild_commands if command["name"] == "ask")
    effort = next(option for option in ask["options"] if option["name"] == "effort")
    assert [choice["value"] for choice in effort["choices"]] == ["low", "medium", "high"]


async def test_commands_sync_globally_without_guild_ids(world: World, start_bot: StartBot) -> None:
    await start_bot()
    assert {command["name"] for command in world.api.commands[None]} == COMMANDS


@pytest.mark.parametrize("threads", [False, True])
async def test_invite_url_asks_for_exactly_the_permissions_used(
    world: World, start_bot: StartBot, caplog: pytest.LogCaptureFixture, threads: bool
) -> None:
    caplog.set_level(logging.INFO, logger="bots.discord")
    await start_bot(discord_thread_per_conversation=threads)
    url = re.search(r"https://discord\.com/oauth2/authorize\S+", caplog.text)
    assert url is not None
    query = parse_qs(urlparse(url.group(0)).query)
    assert query["client_id"] == [str(APPLICATION_ID)]
    assert set(query["scope"][0].split()) == {"bot", "applications.commands"}
    expected = VIEW | SEND | HISTORY | SEND_IN_THREADS | (CREATE_PUBLIC_THREADS if threads else 0)
    assert int(query["permissions"][0]) == expected


@pytest.mark.parametrize("discord_api", [{"heartbeat_interval_ms": 50}], indirect=True)
async def test_heartbeats_are_sent_and_acknowledged_without_reconnecting(
    discord_api: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    gateway = discord_api.gateway
    await discord_api.wait_for(lambda: gateway.heartbeats >= 4, what="four heartbeats")
    assert gateway.identifies == 1
    assert gateway.resumes == 0


@pytest.mark.parametrize("discord_api", [{"refuse_privileged": True}], indirect=True)
async def test_refused_message_content_intent_explains_the_fix_in_one_line(
    discord_api: FakeDiscord, start_bot: StartBot
) -> None:
    with pytest.raises(DiscordStartupError) as refused:
        await start_bot()
    message = str(refused.value)
    assert "\n" not in message
    assert "Message Content Intent" in message
    assert f"https://discord.com/developers/applications/{APPLICATION_ID}/bot" in message
    assert discord_api.gateway.close_codes == [4014]


async def test_wrong_token_is_a_clear_error_without_the_token(world: World, start_bot: StartBot) -> None:
    with pytest.raises(DiscordStartupError) as refused:
        await start_bot(discord_bot_token="not-the-token")
    assert "DISCORD_BOT_TOKEN" in str(refused.value)
    assert "not-the-token" not in str(refused.value)


@pytest.mark.parametrize("discord_api", [{"gateway_token": "reset-meanwhile"}], indirect=True)
async def test_a_token_the_gateway_refuses_gets_the_token_fix_in_one_line(
    discord_api: FakeDiscord, start_bot: StartBot
) -> None:
    with pytest.raises(DiscordStartupError) as refused:
        await start_bot()
    message = str(refused.value)
    assert message == (
        "the Discord gateway refused DISCORD_BOT_TOKEN (4004): reset the token under Bot in the Developer"
        " Portal and set the new one"
    )
    assert discord_api.gateway.close_codes == [4004]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:{port}/api/v10", "cannot reach Discord at http://127.0.0.1:{port}/api/v10"),
        ("127.0.0.1:{port}/api/v10", "cannot reach Discord at 127.0.0.1:{port}/api/v10"),
        ("http://proxyuser:s3cret@127.0.0.1:{port}/api/v10", "DISCORD_API_BASE must not hold a user"),
    ],
)
async def test_a_bad_or_unreachable_api_base_is_a_clear_one_line_error(
    start_bot: StartBot, base: str, expected: str
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = closed.getsockname()[1]
    try:
        with pytest.raises(DiscordStartupError) as refused:
            await start_bot(discord_api_base=base.format(port=port))
    finally:
        closed.close()
    message = str(refused.value)
    assert message.startswith(expected.format(port=port))
    assert "\n" not in message and "s3cret" not in message


async def test_not_ready_while_the_gateway_connection_is_down_and_ready_again_once_resumed(
    world: World, start_bot: StartBot
) -> None:
    bot = await start_bot()
    api = world.api
    assert bot.runner.ready()
    resumed = api.gateway.hold_resume()
    await api.gateway.drop()
    await api.wait_for(lambda: not bot.runner.ready(), what="readiness to end with the connection")
    resumed.set()
    await api.wait_for(lambda: api.gateway.resumes == 1 and bot.runner.ready(), what="readiness after RESUME")
    assert api.gateway.identifies == 1
