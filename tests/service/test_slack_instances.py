"""Two real `seedbot run` instances of one Slack app (issue 12): one fake Slack holding both Socket Mode
connections and spreading the events over them, one PostgreSQL database, one Redis.

Instance A is started first and holds connection 0, B holds connection 1, so an event sent to
connection i reaches instance i. Unaddressed deliveries go to the connections in turn: the `message`
and `app_mention` events of one mention then land on different instances, as they do in Slack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.instances import HEARTBEAT_EVERY_S, LEASE_S
from core.reply.streamer import STOPPED
from core.service import INTERRUPTED_BY_RESTART
from tests.discord.test_shard_processes import free_ports
from tests.fakes.model_server import FakeModelServer, Script
from tests.fakes.slack import APP_TOKEN, BOT_USER_ID, FakeSlack, Message
from tests.fakes.slack import BOT_TOKEN as SLACK_BOT_TOKEN
from tests.process import seedbot_environment
from tests.service.test_run import Seedbot

REDIS_URL = "redis://127.0.0.1:6379/0"
A, B = 0, 1  # instance i holds Socket Mode connection i
# Long enough to be cut short by a stop or a kill: 600 deltas, at least 30 s.
SLOW = Script(content="word " * 600, chunk_chars=5, delay_s=0.05)
# Issue #15's realistic pace: 200 tokens at 50 tokens a second, about 4 s an answer.
PACED = Script(content="".join(f"w{n:03d} " for n in range(200)), chunk_chars=5, delay_s=1 / 50)


class Instance(Seedbot):
    """One `seedbot run` of the pair. Its output is read as it is written (a full pipe would stall the
    process) and printed when it ends, which pytest shows for a failed test."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        super().__init__(env, "slack")
        self.name = name
        self.output: list[str] = []
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Instance:
        await super().__aenter__()
        assert self.process is not None and self.process.stdout and self.process.stderr
        streams = (self.process.stdout, self.process.stderr)
        self._readers = [asyncio.create_task(self._read(stream)) for stream in streams]
        return self

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.output.append(line.decode(errors="replace"))

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given back, replies left as they are."""
        assert self.process is not None
        self.process.kill()
        await self.exited()

    async def exited(self) -> tuple[int, str]:
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), 30)
        await asyncio.wait_for(asyncio.gather(*self._readers), 10)
        return self.process.returncode or 0, "".join(self.output)

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        await asyncio.gather(*self._readers, return_exceptions=True)
        print(f"--- instance {self.name} ---\n{''.join(self.output)}")


@dataclass
class Pair:
    slack: FakeSlack
    instances: list[Instance]
    ports: list[int]  # each instance's SEEDBOT_HTTP_PORT (/readyz, /metrics)
    alice: str
    general: str

    async def metric(self, instance: int, sample: str) -> float:
        """One sample of an instance's /metrics, e.g. `seedbot_takeovers_total` (0 when absent)."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{self.ports[instance]}/metrics")).text
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    async def answers(self, instance: int, outcome: str) -> float:
        return await self.metric(instance, f'seedbot_requests_total{{outcome="{outcome}",platform="slack"}}')

    async def wait_answers(
        self, outcome: str, wanted: Callable[[list[float]], bool], *, within_s: float = 30.0
    ) -> list[float]:
        """Until the instances' counts of answers with this outcome are `wanted` (an answer is counted
        after its final edit); the counts, A's first."""
        counts: list[float] = []
        for _ in range(int(within_s / 0.2)):
            counts = [await self.answers(i, outcome) for i in range(len(self.ports))]
            if wanted(counts):
                return counts
            await asyncio.sleep(0.2)
        raise AssertionError(f"{outcome} answers per instance: {counts}")


async def wait_ready(port: int, *, within_s: float = 30.0) -> dict[str, Any]:
    """/readyz of an instance once it is ready and listening for the other instance's stops."""
    body: dict[str, Any] = {}
    async with httpx.AsyncClient() as client:
        for _ in range(int(within_s / 0.1)):
            try:
                response = await client.get(f"http://127.0.0.1:{port}/readyz")
                body = response.json()
                if response.status_code == 200 and body.get("redis") == {"stops": True}:
                    return body
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz on {port} never became ready with the stop channel (last: {body!r})")


@pytest.fixture
async def pair(model_server: FakeModelServer, tmp_path: Path, postgres_url: str) -> AsyncIterator[Pair]:
    """A, then B, each connected and ready; both stopped with SIGTERM (or already killed) afterwards."""
    async with FakeSlack() as slack:
        alice = slack.add_user("alice")
        general = slack.add_channel("general", members=[alice])
        ports = free_ports(2)

        def env(instance: int) -> dict[str, str]:
            return seedbot_environment(
                model_server,
                tmp_path / "unused.db",
                DATABASE_URL=postgres_url,
                REDIS_URL=REDIS_URL,
                SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
                SLACK_APP_TOKEN=APP_TOKEN,
                SLACK_API_URL=slack.api_url,
                SEEDBOT_HTTP_PORT=str(ports[instance]),
                SEEDBOT_SHUTDOWN_GRACE_S="2",
            )

        async with Instance("A", env(A)) as first:
            await slack.socket.wait_connected(A, within_s=30)
            await wait_ready(ports[A])
            async with Instance("B", env(B)) as second:
                await slack.socket.wait_connected(B, within_s=30)
                await wait_ready(ports[B])
                assert slack.socket.live == [A, B]
                yield Pair(slack, [first, second], ports, alice, general)
                for instance in (second, first):
                    if instance.process is not None and instance.process.returncode is None:
                        code, _ = await instance.terminate()
                        assert code == 0


def mention(text: str) -> str:
    return f"<@{BOT_USER_ID}> {text}"


def finished(message: Message, content: str) -> bool:
    """The whole answer with its footer, not cut, stopped or marked interrupted, and with its 👍 / 👎
    (the last thing an answer writes: until then it is still at work in its instance)."""
    *_, footer = message.text.split("\n\n")
    return (
        not message.streaming
        and message.text.startswith(content)
        and footer.startswith("_")
        and " tokens" in footer
        and STOPPED not in message.text
        and INTERRUPTED_BY_RESTART not in message.text
        and any(block["type"] == "context_actions" for block in message.blocks)
    )


async def first_words(slack: FakeSlack, channel: str, root: str) -> Message:
    """The reply in `root`'s thread once its answer text is visible."""
    replies = await slack.wait_for(
        lambda: [m for m in slack.bot_messages(channel, root) if "word" in m.text], within_s=30
    )
    return replies[0]


async def test_twenty_mentions_spread_over_both_instances_are_each_answered_exactly_once(
    pair: Pair, model_server: FakeModelServer
):
    slack = pair.slack
    channels = [pair.general] + [slack.add_channel(f"team{n}", members=[pair.alice]) for n in range(3)]
    asked: list[tuple[str, str, int]] = []
    for n in range(20):
        channel = channels[n % len(channels)]
        asked.append((channel, await slack.post(pair.alice, channel, mention(f"question {n} please")), n))

    def answered() -> bool:
        return all(
            any(finished(m, f"Echo: question {n} please") for m in slack.bot_messages(channel, root))
            for channel, root, n in asked
        )

    # Finished answers are paced through the workspace's budgets (shared in Redis): 20 of them take a
    # while, mostly for chat.update's 50 a minute.
    await slack.wait_for(answered, within_s=90)
    # Each answer is counted by the instance that wrote it (the two may share them any way).
    await pair.wait_answers("complete", lambda counts: sum(counts) == 20)
    await slack.echoes_delivered()

    for channel, root, _ in asked:
        assert len(slack.bot_messages(channel, root)) == 1
    assert len(model_server.requests) == 20
    for outcome in ("interrupted", "stopped", "error"):
        assert [await pair.answers(i, outcome) for i in (A, B)] == [0, 0], outcome
    # The events really were spread: both instances got prompts, and mentions whose two events
    # (`message`, `app_mention`) went to different instances, both of which tried to answer.
    prompts = [d for d in slack.deliveries if d.payload["event"].get("user") == pair.alice]
    assert {d.connection for d in prompts} == {A, B}
    assert all(d.acked for d in slack.deliveries)
    connections: dict[str, set[int | None]] = {}
    for delivery in prompts:
        connections.setdefault(delivery.payload["event"]["ts"], set()).add(delivery.connection)
    assert len(connections) == 20
    assert any(both == {A, B} for both in connections.values())


async def test_a_stop_that_reaches_the_other_instance_ends_the_answer(
    pair: Pair, model_server: FakeModelServer
):
    slack = pair.slack
    model_server.enqueue(SLOW)
    root = await slack.post(pair.alice, pair.general, mention("write a lot"), connection=A)
    reply = await first_words(slack, pair.general, root)

    await slack.post(pair.alice, pair.general, "stop", thread_ts=root, connection=B)
    await slack.wait_for(lambda: STOPPED in reply.text and not reply.streaming, within_s=20)
    assert reply.text.count("word") < SLOW.content.count("word")  # cut short, not written to the end
    await asyncio.wait_for(model_server.requests[0].disconnected.wait(), 10)  # the model call ended too
    # A wrote the answer and ended it stopped; B only passed the stop on.
    await pair.wait_answers("stopped", lambda counts: counts == [1, 0])
    assert [await pair.answers(i, "complete") for i in (A, B)] == [0, 0]
    assert len(model_server.requests) == 1  # "stop" itself was no question to the model
    assert slack.bot_messages(pair.general, root) == [reply]
    [stop] = [d for d in slack.deliveries if d.payload["event"].get("text") == "stop"]
    assert stop.connection == B and stop.acked


async def test_the_survivor_marks_a_killed_instances_reply_interrupted_once_its_lease_expires(
    pair: Pair, model_server: FakeModelServer
):
    slack = pair.slack
    model_server.enqueue(SLOW)
    root = await slack.post(pair.alice, pair.general, mention("write a lot"), connection=A)
    reply = await first_words(slack, pair.general, root)

    # While A lives, B leaves its reply alone: watched for longer than a lease and one more of B's
    # rounds of taking over the dead, the reply is still A's, streaming, never marked.
    watch_until = time.monotonic() + LEASE_S + HEARTBEAT_EVERY_S
    written = len(reply.text)
    while time.monotonic() < watch_until:
        assert INTERRUPTED_BY_RESTART not in reply.text
        await asyncio.sleep(0.1)
    assert reply.streaming and len(reply.text) > written  # A was still writing it all along
    assert await pair.metric(B, "seedbot_takeovers_total") == 0

    await pair.instances[A].kill()
    await slack.wait_for(lambda: INTERRUPTED_BY_RESTART in reply.text, within_s=30)
    assert reply.text.startswith("word") and reply.text.count(INTERRUPTED_BY_RESTART) == 1
    assert not reply.streaming
    assert await pair.metric(B, "seedbot_takeovers_total") == 1
    assert slack.bot_messages(pair.general, root) == [reply]


async def test_both_instances_streaming_into_one_workspace_get_no_429(
    pair: Pair, model_server: FakeModelServer
):
    slack = pair.slack
    # The fake counts the write methods per workspace as Slack does (token buckets with bursts): a call
    # beyond what the two instances' shared budgets allow would be a 429.
    slack.enforce_tiers()
    channels = [slack.add_channel(f"busy{n}", members=[pair.alice]) for n in range(10)]
    model_server.enqueue(*[PACED] * len(channels))
    roots = await asyncio.gather(
        *(
            slack.post(pair.alice, channel, mention(f"question {n}"), connection=n % 2)
            for n, channel in enumerate(channels)
        )
    )
    threads = list(zip(channels, roots, strict=True))

    await slack.wait_for(
        lambda: all(
            any(finished(m, PACED.content.strip()) for m in slack.bot_messages(channel, root))
            for channel, root in threads
        ),
        within_s=90,
    )
    await pair.wait_answers("complete", lambda counts: counts == [5, 5])  # each wrote the five it got
    assert slack.rate_limited_calls() == []
    for channel, root in threads:
        assert len(slack.bot_messages(channel, root)) == 1
