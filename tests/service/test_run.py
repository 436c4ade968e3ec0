"""`seedbot run` as an operator meets it: the real command in a subprocess, the fakes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from tests.discord.conftest import populate
from tests.fakes.discord import BOT_TOKEN, FakeDiscord
from tests.fakes.model_server import Script
from tests.fakes.slack import APP_TOKEN, BOT_USER_ID, FakeSlack
from tests.fakes.slack import BOT_TOKEN as SLACK_BOT_TOKEN
from tests.process import REPO, SEEDBOT, seedbot_environment


def environment(model_server, tmp_path: Path, **extra: str) -> dict[str, str]:
    return seedbot_environment(model_server, tmp_path / "run.db", **extra)


class Seedbot:
    """One `seedbot run` process; stopped with SIGTERM and reaped, whatever the test did."""

    def __init__(self, env: dict[str, str], *args: str):
        self.env, self.args = env, args
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Seedbot:
        self.process = await asyncio.create_subprocess_exec(
            *SEEDBOT,
            "run",
            *self.args,
            env=self.env,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return self

    async def terminate(self) -> tuple[int, str]:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.exited()

    async def exited(self) -> tuple[int, str]:
        assert self.process is not None
        _, err = await asyncio.wait_for(self.process.communicate(), 30)
        return self.process.returncode or 0, err.decode()

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def wait_http(url: str, *, within_s: float = 20.0) -> httpx.Response:
    last: object = None
    async with httpx.AsyncClient() as client:
        for _ in range(int(within_s / 0.1)):
            try:
                response = await client.get(url)
                if response.status_code == 200:
                    return response
                last = response.text
            except httpx.TransportError as error:
                last = error
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered 200 (last: {last!r})")


@pytest.fixture
async def discord_api():
    async with FakeDiscord() as api:
        yield api


def discord_env(api: FakeDiscord) -> dict[str, str]:
    return {"DISCORD_BOT_TOKEN": BOT_TOKEN, "DISCORD_API_BASE": api.api_base}


async def test_answers_on_slack_and_discord_from_one_process(
    model_server, tmp_path, discord_api, unused_port
):
    world = populate(discord_api)
    async with FakeSlack() as slack:
        alice = slack.add_user("alice")
        general = slack.add_channel("general", members=[alice])
        env = environment(
            model_server,
            tmp_path,
            SEEDBOT_HTTP_PORT=str(unused_port),
            SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.api_url,
            **discord_env(discord_api),
        )
        async with Seedbot(env) as bot:
            await discord_api.wait_ready(within_s=20)
            await asyncio.wait_for(slack.socket.connected.wait(), 20)
            ready = await wait_http(f"http://127.0.0.1:{unused_port}/readyz")
            assert ready.json()["checks"] == {"database": True, "slack": True, "discord": True}

            model_server.enqueue(Script(content="Hi Slack."), Script(content="Hi Discord."))
            prompt_ts = await slack.post(alice, general, f"<@{BOT_USER_ID}> hello")
            await slack.wait_for(
                lambda: any("Hi Slack." in m.text for m in slack.bot_messages(general, prompt_ts)),
                within_s=20,
            )
            await discord_api.user_message(world.general, world.alice, world.mention("hello"))
            await discord_api.wait_for(
                lambda: any("Hi Discord." in m["content"] for m in discord_api.bot_messages(world.general)),
                within_s=20,
                what="the Discord answer",
            )
            code, _ = await bot.terminate()
    assert code == 0


async def test_with_nothing_configured_it_says_which_variables_to_set(model_server, tmp_path):
    async with Seedbot(environment(model_server, tmp_path)) as bot:
        code, err = await bot.exited()
    assert code == 3
    assert "DISCORD_BOT_TOKEN" in err and "SLACK_BOT_TOKEN" in err and "seedbot chat" in err


async def test_answers_on_discord_and_serves_health_readiness_and_metrics(
    model_server, tmp_path, discord_api, unused_port
):
    world = populate(discord_api)
    env = environment(model_server, tmp_path, SEEDBOT_HTTP_PORT=str(unused_port), **discord_env(discord_api))
    base = f"http://127.0.0.1:{unused_port}"
    async with Seedbot(env) as bot:
        await discord_api.wait_ready(within_s=20)
        assert (await wait_http(f"{base}/healthz")).text == "ok"
        ready = await wait_http(f"{base}/readyz")
        assert ready.json()["checks"] == {"database": True, "discord": True}

        model_server.enqueue(Script(content="Hello from the subprocess.", usd=0.002))
        await discord_api.user_message(world.general, world.alice, world.mention("hi"))
        await discord_api.wait_for(
            lambda: any(
                "Hello from the subprocess." in m["content"] for m in discord_api.bot_messages(world.general)
            ),
            within_s=20,
            what="the answer",
        )
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{base}/metrics")).text
        assert 'seedbot_requests_total{outcome="complete",platform="discord"} 1.0' in metrics
        assert "seedbot_cost_usd_total 0.002" in metrics
        assert 'seedbot_instance{instance="' in metrics and "seedbot_takeovers_total 0.0" in metrics
        code, _ = await bot.terminate()
    assert code == 0


async def sigterm_during_answer(discord_api, env: dict[str, str], prompt: str, first_words: str) -> str:
    """Start the bot, let an answer begin, SIGTERM the process; the final text of the answer."""
    world = populate(discord_api)
    async with Seedbot(env) as bot:
        await discord_api.wait_ready(within_s=20)
        await discord_api.user_message(world.general, world.alice, world.mention(prompt))
        await discord_api.wait_for(
            lambda: any(first_words in m["content"] for m in discord_api.bot_messages(world.general)),
            within_s=20,
            what="the answer to start",
        )
        code, _ = await bot.terminate()
    assert code == 0
    return discord_api.bot_messages(world.general)[-1]["content"]


async def test_sigterm_mid_stream_finalises_the_answer_as_interrupted(model_server, tmp_path, discord_api):
    env = environment(model_server, tmp_path, SEEDBOT_SHUTDOWN_GRACE_S="0.5", **discord_env(discord_api))
    model_server.enqueue(Script(content="tick " * 400, chunk_chars=5, delay_s=0.05))
    final = await sigterm_during_answer(discord_api, env, "count", "tick")
    assert final.startswith("tick")
    assert "shutting down" in final


async def test_sigterm_lets_a_short_answer_finish_within_the_grace(model_server, tmp_path, discord_api):
    env = environment(model_server, tmp_path, SEEDBOT_SHUTDOWN_GRACE_S="20", **discord_env(discord_api))
    model_server.enqueue(Script(content="almost done " * 20, chunk_chars=6, delay_s=0.02))
    final = await sigterm_during_answer(discord_api, env, "finish", "almost")
    assert final.count("almost done") == 20
    assert "⚠️" not in final
