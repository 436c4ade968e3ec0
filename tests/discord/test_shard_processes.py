"""Two real `seedbot run discord` processes share a bot: shard 0 and shard 1 of two, one fake Discord,
one PostgreSQL database. Each server is answered once, by the process running its shard."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.discord import BOT_TOKEN, FakeDiscord
from tests.fakes.model_server import FakeModelServer, Script
from tests.process import seedbot_environment
from tests.service.test_run import Seedbot, wait_http

ANSWERS = re.compile(r'^seedbot_requests_total\{outcome="complete",platform="discord"\} (\S+)$', re.M)


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/readyz")
    return response.status_code, response.json()


async def wait_readyz(port: int, wanted: dict[str, bool], *, within_s: float = 20.0) -> dict[str, Any]:
    """/readyz once its `discord_shards` is `wanted` (bounded)."""
    body: dict[str, Any] = {}
    for _ in range(int(within_s / 0.1)):
        try:
            _, body = await readyz(port)
        except httpx.TransportError:
            pass  # not listening yet
        if body.get("discord_shards") == wanted:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz on {port} never showed shards {wanted} (last: {body!r})")


def free_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on, distinct (all bound at once, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def answers_of(port: int) -> float:
    """How many Discord answers this process completed, from its /metrics."""
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    found = ANSWERS.search(metrics)
    return float(found.group(1)) if found else 0.0


async def wait_answers(ports: list[int], wanted: list[float], *, within_s: float = 20.0) -> None:
    """Until the processes' answer counts are `wanted` (an answer is counted after its last edit)."""
    counts: list[float] = []
    for _ in range(int(within_s / 0.1)):
        counts = [await answers_of(port) for port in ports]
        if counts == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"answers per process: {counts}, expected {wanted}")


async def test_two_processes_each_answer_the_servers_of_their_shard(
    model_server: FakeModelServer, tmp_path: Path, postgres_url: str
) -> None:
    async with FakeDiscord() as api:
        alice = api.add_user("alice")
        channels = []
        for shard_id in (0, 1):
            guild = api.add_guild(f"Server {shard_id}", shard=(shard_id, 2))
            api.add_member(guild, alice)
            channels.append(api.add_channel(guild, "general"))
        ports = free_ports(2)
        release = api.gateway.hold(1)

        def env(shard_id: int) -> dict[str, str]:
            return seedbot_environment(
                model_server,
                tmp_path / "unused.db",
                DATABASE_URL=postgres_url,
                # Harmless today; should a second instance without Redis ever wait for the first's
                # lease, this keeps the two running side by side.
                REDIS_URL="redis://127.0.0.1:6379/15",
                DISCORD_BOT_TOKEN=BOT_TOKEN,
                DISCORD_API_BASE=api.api_base,
                DISCORD_SHARD_COUNT="2",
                DISCORD_SHARD_IDS=str(shard_id),
                SEEDBOT_HTTP_PORT=str(ports[shard_id]),
            )

        async with Seedbot(env(0), "discord") as first, Seedbot(env(1), "discord") as second:
            ready = await wait_http(f"http://127.0.0.1:{ports[0]}/readyz")
            assert ready.json()["checks"]["discord"] is True
            assert ready.json()["discord_shards"] == {"0": True}
            # Shard 1's IDENTIFY is held: its process serves /readyz, not ready, saying which shard.
            waiting = await wait_readyz(ports[1], {"1": False})
            assert waiting["ready"] is False and waiting["checks"]["discord"] is False
            release.set()
            ready = await wait_http(f"http://127.0.0.1:{ports[1]}/readyz")
            assert ready.json()["discord_shards"] == {"1": True}
            assert sorted(session.shard for session in api.gateway.live.values()) == [(0, 2), (1, 2)]

            # Shard 0's server, shard 1's, then a DM, which Discord sends on shard 0.
            dm = api.dm_channel(alice)
            asked = [(channels[0], f"<@{api.bot_id}> hi", [1.0, 0.0])]
            asked += [(channels[1], f"<@{api.bot_id}> hi", [1.0, 1.0]), (dm, "hi", [2.0, 1.0])]
            for number, (channel, prompt, counts) in enumerate(asked):
                text = f"Answer number {number}."
                model_server.enqueue(Script(content=text))
                await api.user_message(channel, alice, prompt)
                await api.wait_for(
                    lambda channel=channel, text=text: any(
                        text in m["content"] and "effort" in m["content"] for m in api.bot_messages(channel)
                    ),
                    within_s=20,
                    what=f"answer {number}",
                )
                # From the process running that shard: it counted the answer, the other did not.
                await wait_answers(ports, counts)
                assert len(api.bot_messages(channel)) == 1
            assert len(model_server.requests) == 3
            for bot in (first, second):
                code, _ = await bot.terminate()
                assert code == 0
