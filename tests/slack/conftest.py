"""A fake Slack workspace with people, channels and a running seedbot: the real slack-bolt and
slack-sdk, ChatService and model client against the fake Slack and the fake model API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bots.http import HttpServer
from bots.slack import SlackRunner
from core.config import Settings
from core.metrics import Metrics
from core.service import ChatService
from tests.fakes.model_server import FakeModelServer
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack, Message


@dataclass
class World:
    slack: FakeSlack
    alice: str
    bob: str
    boss: str  # listed in SEEDBOT_ADMINS
    robot: str  # another app's bot user
    general: str
    random: str

    @staticmethod
    def mention(text: str) -> str:
        return f"<@{BOT_USER_ID}> {text}"


@dataclass
class Bot:
    runner: SlackRunner
    service: ChatService
    settings: Settings
    http: HttpServer | None = None
    stopped: bool = False

    async def idle(self) -> None:
        """Until every answer the bot has started is finished."""
        assert await self.runner.bot.work.idle(15.0), "the bot did not finish its work"

    async def stop(self) -> None:
        """Shut down as `seedbot run` does on SIGTERM (the SQLite file stays for a restart)."""
        if self.stopped:
            return
        self.stopped = True
        await self.runner.stop(grace_s=2)
        if self.http is not None:
            await self.http.stop()
        await self.service.close()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def world(slack: FakeSlack) -> World:
    alice, bob, boss = slack.add_user("alice"), slack.add_user("bob"), slack.add_user("boss")
    robot = slack.add_user("robot", is_bot=True, bot_id="B0ROBOT")
    members = [alice, bob, boss, robot]
    return World(
        slack=slack,
        alice=alice,
        bob=bob,
        boss=boss,
        robot=robot,
        general=slack.add_channel("general", members=members),
        random=slack.add_channel("random", members=members),
    )


StartBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def start_bot(
    make_settings: Callable[..., Settings], slack: FakeSlack, world: World
) -> AsyncIterator[StartBot]:
    """Start seedbot's Slack side (Socket Mode, or HTTP mode with `http=True`); stopped after the test."""
    started: list[Bot] = []

    async def start(*, http: bool = False, **overrides: Any) -> Bot:
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_api_url": slack.api_url,
            "admins": (world.boss,),
        }
        if http:
            values["slack_signing_secret"] = SIGNING_SECRET
        else:
            values["slack_app_token"] = APP_TOKEN
        settings = make_settings(**(values | overrides))
        service = await ChatService.open(settings)
        server = None
        if http:
            server = HttpServer(Metrics(), always_ready, host="127.0.0.1", port=0)
        runner = SlackRunner(settings, service, http=server)
        bot = Bot(runner, service, settings, server)
        started.append(bot)
        if server is not None:
            await server.start()
            slack.use_http(f"http://127.0.0.1:{server.port}/slack/events")
        await runner.start(connect_timeout_s=10)
        if not http:
            await slack.socket.connected.wait()
        return bot

    yield start
    for bot in reversed(started):
        await bot.stop()


async def always_ready() -> dict[str, bool]:
    return {"test": True}


def reply_text(messages: list[Message]) -> str:
    return "\n".join(message.text for message in messages)


def model_prompt(model_server: FakeModelServer, index: int = -1) -> str:
    """Everything the model was sent in one request, as one string (for `in` checks)."""
    texts = []
    for message in model_server.requests[index].body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part.get("text", "") for part in content if isinstance(part, dict)]
    return "\n".join(texts)


def model_parts(model_server: FakeModelServer, kind: str, index: int = -1) -> list[dict[str, Any]]:
    """Content parts of type `kind` (image_url, video_url...) in one request to the model."""
    parts = []
    for message in model_server.requests[index].body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            parts += [part for part in content if isinstance(part, dict) and part.get("type") == kind]
    return parts
