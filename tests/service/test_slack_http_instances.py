"""Two real `seedbot run` processes in Slack's HTTP mode behind a load balancer, on one PostgreSQL
database and one Redis: any instance may get any event, and Slack's retries land on the other one.
Every mention is still answered exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.discord.test_shard_processes import free_ports
from tests.fakes.balancer import RoundRobinBalancer
from tests.fakes.model_server import FakeModelServer
from tests.fakes.slack import BOT_TOKEN as SLACK_BOT_TOKEN
from tests.fakes.slack import BOT_USER_ID, SIGNING_SECRET, FakeSlack
from tests.process import seedbot_environment
from tests.service.test_run import Seedbot, wait_http

REDIS_URL = "redis://127.0.0.1:6379/0"
MENTIONS = 10


def whole(text: str) -> bool:
    """A finished answer: it ends with the footer (italic, with the token count)."""
    footer = text.rsplit("\n\n", 1)[-1]
    return footer.startswith("_") and " tokens" in footer


async def test_behind_a_load_balancer_each_mention_is_answered_once_even_when_retried_elsewhere(
    model_server: FakeModelServer, tmp_path: Path, postgres_url: str
) -> None:
    ports = free_ports(2)
    async with FakeSlack() as slack:
        alice = slack.add_user("alice")
        general = slack.add_channel("general", members=[alice])
        environments = [
            seedbot_environment(
                model_server,
                tmp_path / "unused.db",
                DATABASE_URL=postgres_url,
                REDIS_URL=REDIS_URL,
                SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=slack.api_url,
                SEEDBOT_HTTP_PORT=str(port),
            )
            for port in ports
        ]
        backends = [f"http://127.0.0.1:{port}" for port in ports]
        async with Seedbot(environments[0]) as one, Seedbot(environments[1]) as two:
            for backend in backends:
                await wait_http(f"{backend}/readyz", within_s=30)
            async with RoundRobinBalancer(backends) as balancer:
                slack.use_http(f"{balancer.url}/slack/events")
                prompts = []
                for number in range(MENTIONS):
                    prompts.append(await slack.post(alice, general, f"<@{BOT_USER_ID}> question {number}"))
                # Slack's retry of each delivery (the same event_id), which the balancer sends on.
                for delivery in list(slack.deliveries):
                    await slack.redeliver(delivery)
                await slack.wait_for(
                    lambda: all(any(whole(m.text) for m in slack.bot_messages(general, p)) for p in prompts),
                    within_s=60,
                )
                await asyncio.sleep(1.0)  # room for a second answer, were one coming
                assert all(balancer.served[backend] > 0 for backend in backends)
            for number, prompt in enumerate(prompts):
                [reply] = slack.bot_messages(general, prompt)
                assert f"question {number}" in reply.text
            assert len(model_server.requests) == MENTIONS
            for bot in (one, two):
                code, _ = await bot.terminate()
                assert code == 0
