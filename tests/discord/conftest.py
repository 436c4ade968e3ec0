"""A fake Discord with one server, people and a running bot: the real discord.py, ChatService and
model client against the fake Discord and the fake model API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bots.discord import DiscordRunner, DiscordStartupError
from core.config import Settings
from core.service import ChatService
from tests.fakes.discord import BOT_TOKEN, MANAGE_GUILD, FakeDiscord
from tests.fakes.model_server import FakeModelServer


@dataclass
class World:
    api: FakeDiscord
    guild: dict[str, Any]
    general: dict[str, Any]
    random: dict[str, Any]
    alice: dict[str, Any]
    bob: dict[str, Any]
    boss: dict[str, Any]  # has Manage Server through the "mods" role
    other_bot: dict[str, Any]
    mods: dict[str, Any]

    def mention(self, text: str) -> str:
        return f"<@{self.api.bot_id}> {text}"


@dataclass
class Bot:
    runner: DiscordRunner
    service: ChatService
    settings: Settings

    async def idle(self) -> None:
        """Until every message and command the bot has started handling is done with."""
        assert await self.runner.idle(10.0), "the bot did not finish its work"


@pytest.fixture
async def discord_api(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """The fake Discord; `@pytest.mark.parametrize("discord_api", [{...}], indirect=True)` configures it."""
    async with FakeDiscord(**getattr(request, "param", {})) as api:
        yield api


def populate(api: FakeDiscord) -> World:
    guild = api.add_guild("Test Server")
    mods = api.add_role(guild, "mods", permissions=MANAGE_GUILD)
    alice, bob, boss = api.add_user("alice"), api.add_user("bob"), api.add_user("boss")
    other_bot = api.add_user("otherbot", bot=True)
    for user in (alice, bob, other_bot):
        api.add_member(guild, user)
    api.add_member(guild, boss, roles=[mods])
    return World(
        api=api,
        guild=guild,
        general=api.add_channel(guild, "general"),
        random=api.add_channel(guild, "random"),
        alice=alice,
        bob=bob,
        boss=boss,
        other_bot=other_bot,
        mods=mods,
    )


@pytest.fixture
def world(discord_api: FakeDiscord) -> World:
    return populate(discord_api)


StartBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def start_bot(
    make_settings: Callable[..., Settings], discord_api: FakeDiscord
) -> AsyncIterator[StartBot]:
    """Start the Discord side of seedbot with settings overrides; stopped and closed after the test."""
    started: list[Bot] = []

    async def start(**overrides: Any) -> Bot:
        values: dict[str, Any] = {"discord_bot_token": BOT_TOKEN, "discord_api_base": discord_api.api_base}
        settings = make_settings(**(values | overrides))
        service = await ChatService.open(settings)
        try:
            runner = DiscordRunner(settings, service, guild_ready_timeout=0.05)
        except DiscordStartupError:
            await service.close()
            raise
        bot = Bot(runner, service, settings)
        started.append(bot)
        await runner.start(ready_timeout_s=10)
        return bot

    yield start
    for bot in reversed(started):
        await bot.runner.stop(grace_s=1)
        await bot.service.close()


def last_user_text(model_server: FakeModelServer) -> str:
    """Everything the model was sent in the last request, as one string (for `in` checks)."""
    messages = model_server.requests[-1].body["messages"]
    return "\n".join(_text_of(message.get("content")) for message in messages)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def request_parts(model_server: FakeModelServer, kind: str, index: int = -1) -> list[dict[str, Any]]:
    """Content parts of type `kind` (image_url, video_url...) in a request to the model (the last)."""
    parts = []
    for message in model_server.requests[index].body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            parts += [part for part in content if isinstance(part, dict) and part.get("type") == kind]
    return parts
