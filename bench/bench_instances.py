"""Two instances under a burst: 400 mentions at once on Discord, answered by two real `seedbot run`
processes (shard 0 and shard 1 of two) sharing one PostgreSQL database and one Redis.

The fake Discord (REST and gateway, in this process) routes each guild's events to its shard's
process and enforces Discord's limits, answering 429s: per-channel message buckets, and the bot's
global 50 requests a second across both processes. The fake model API runs in a process of its own;
every answer is 300 tokens (5-character words) at 50 tok/s, 6 s. The 400 mentions go out together,
one per channel, in 20 guilds spread evenly over the two shards.

It prints how many answers became whole (the full text and the footer, once, in the right channel)
and when the last and the median did, beside the earliest the global budget allows; when the replies
first showed; the 429s the fake returned; the Discord calls, and how many came in the busiest second;
when the feedback buttons were all shown; each process's answers (from its /metrics), takeovers,
the least time its lease had left, peak RSS (VmHWM), and CPU time from the burst to the last button
per 1,000 tokens streamed; and the warnings and errors each logged. Everything listens on 127.0.0.1.
The database (created for the run, dropped after) and Redis db 13 (its `seedbot:` keys deleted before
and after) are the bench's own. Runs in about a minute and a half.

    .venv/bin/python bench/bench_instances.py [--answers 400] [--logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bots.discord.budget import global_budget
from tests.discord.test_shard_processes import free_ports, wait_readyz
from tests.fakes.discord import BOT_TOKEN, GLOBAL_RATE, FakeDiscord
from tests.fakes.model_server import API_KEY, FakeModelServer, Script
from tests.postgres import fresh_database
from tests.process import REPO, SEEDBOT, without_seedbot_settings
from tests.service.test_run import wait_http

SHARDS = 2
GUILDS_PER_SHARD = 10
TOKENS, TOKENS_PER_S = 300, 50.0
ANSWER = Script(content="".join(f"w{n:03d} " for n in range(TOKENS)), chunk_chars=5, delay_s=1 / TOKENS_PER_S)
ANSWER_TEXT = ANSWER.content.strip()
ANSWER_S = TOKENS / TOKENS_PER_S
# Redis database of the bench's own: the tests use 0 and 15. Every key seedbot writes starts "seedbot:".
REDIS_URL = "redis://127.0.0.1:6379/13"
REDIS_KEYS, REDIS_MAX_KEYS = "seedbot:*", 100_000
READY_WITHIN_S = 30.0
WHOLE_WITHIN_S = 240.0  # from the burst to the last whole answer, at most
BUTTONS_WITHIN_S = 60.0  # then until every whole answer shows its feedback buttons, at most
COUNTED_WITHIN_S = 30.0  # then until each process has counted its answers in /metrics
POLL_S = 0.1
LEASE_POLL_S = 0.25  # how often the leases' time left is read during the burst
SHUTDOWN_GRACE_S = 5.0
EXIT_WITHIN_S = 30.0
MODEL_QUERIES = 100  # how many times the bench may ask the fake model API for its request count
LOG_SAMPLES = 3  # distinct warning/error lines shown per process
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OUTCOMES = re.compile(r'^seedbot_requests_total\{outcome="(\w+)",platform="discord"\} (\S+)$', re.M)
TAKEOVERS = re.compile(r"^seedbot_takeovers_total (\S+)$", re.M)
LEASE_FAILURES = re.compile(r'^seedbot_lease_renewals_total\{outcome="failed"\} (\S+)$', re.M)
ACTIVE = re.compile(r"^seedbot_active_streams (\S+)$", re.M)
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def serve_model(control: Connection) -> None:
    """The fake model API in its own process (so its CPU is not the bots'): ANSWER to every request.
    It sends its port on `control`, then answers each message there with how many requests it had."""

    async def run() -> None:
        async with FakeModelServer(validate=False) as server:
            server.default = ANSWER
            control.send(server.port)
            loop = asyncio.get_running_loop()
            for _ in range(MODEL_QUERIES):  # until the bench sends False or ends this process
                if not await loop.run_in_executor(None, control.recv):
                    break
                control.send(len(server.requests))

    asyncio.run(run())


async def clear_redis() -> int:
    """Delete seedbot's keys in the bench's Redis database (at most REDIS_MAX_KEYS); how many."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = []
        async for key in client.scan_iter(match=REDIS_KEYS, count=1000):
            keys.append(key)
            if len(keys) >= REDIS_MAX_KEYS:
                break
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class Usage:
    """What /proc says of a process: CPU seconds (user + system) and peak resident set (MiB)."""

    cpu_s: float
    peak_rss_mib: float


def usage_of(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.M)
    return Usage((utime + stime) / CLOCK_TICKS, int(hwm.group(1)) / 1024 if hwm else float("nan"))


@dataclass
class Bot:
    """One `seedbot run discord` process running one shard; its log goes to a file, so a full pipe
    can never stall it."""

    shard_id: int
    port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    usage: dict[str, Usage] = field(default_factory=dict)  # "before" / "after" the burst

    async def start(self, env: dict[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *SEEDBOT,
                "run",
                "discord",
                env=env,
                cwd=REPO,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)).text

    async def stop(self) -> int | None:
        """SIGTERM, then wait (bounded) for the exit; kill if it hangs. The exit code (None: killed)."""
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), EXIT_WITHIN_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            return None

    def problems(self) -> tuple[int, list[str]]:
        """How many warning/error lines the process logged, and a few distinct ones."""
        lines = [
            line for line in self.log_path.read_text(errors="replace").splitlines() if PROBLEM.search(line)
        ]
        distinct: dict[str, None] = {}
        for line in lines:
            distinct.setdefault(re.sub(r"\d+", "N", line)[-200:], None)
        return len(lines), list(distinct)[:LOG_SAMPLES]


def bot_environment(
    shard_id: int, port: int, *, model_url: str, database_url: str, api: FakeDiscord
) -> dict[str, str]:
    """This process's environment without any seedbot setting, plus one shard's instance's."""
    env = without_seedbot_settings()
    env.update(
        AIML_API_KEY=API_KEY,
        AIML_BASE_URL=model_url,
        SEEDBOT_MAX_TOKENS="2048",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        DISCORD_API_BASE=api.api_base,
        DISCORD_SHARD_COUNT=str(SHARDS),
        DISCORD_SHARD_IDS=str(shard_id),
        SEEDBOT_HTTP_PORT=str(port),
        SEEDBOT_SHUTDOWN_GRACE_S=str(SHUTDOWN_GRACE_S),
    )
    return env


def build_world(api: FakeDiscord, answers: int) -> tuple[dict[str, Any], list[tuple[dict[str, Any], int]]]:
    """A user, and `answers` channels (each with its shard) in SHARDS × GUILDS_PER_SHARD guilds."""
    alice = api.add_user("alice")
    guilds = []
    for number in range(SHARDS * GUILDS_PER_SHARD):
        shard_id = number % SHARDS
        guild = api.add_guild(f"Server {number}", shard=(shard_id, SHARDS))
        api.add_member(guild, alice)
        guilds.append((guild, shard_id))
    channels = []
    for number in range(answers):
        guild, shard_id = guilds[number % len(guilds)]
        channels.append((api.add_channel(guild, f"busy-{number}"), shard_id))
    return alice, channels


def buttons_shown(api: FakeDiscord, prompts: dict[str, str]) -> set[str]:
    """The channels where the bot's reply shows the 👍 / 👎 buttons."""
    return {
        m["channel_id"]
        for m in list(api.messages.values())
        if m["channel_id"] in prompts and m["author"]["id"] == api.bot["id"] and m.get("components")
    }


def lower_bound_s(answers: int) -> float:
    """The earliest the last answer can be whole within the global budget: each needs its first post
    and its final edit, and every answer ends at ANSWER_S at the earliest."""
    rate = global_budget(0, GLOBAL_RATE[0]).rate  # the fake's limit is Discord's, the bots' default
    return max(ANSWER_S, (2 * answers - rate.burst) / rate.per_s)


def whole_replies(api: FakeDiscord, prompts: dict[str, str]) -> tuple[set[str], Counter[str]]:
    """(the channels whose reply to their prompt is whole, bot messages per channel) in one pass."""
    whole: set[str] = set()
    per_channel: Counter[str] = Counter()
    bot_id = api.bot["id"]
    for message in list(api.messages.values()):
        channel = message["channel_id"]
        if message["author"]["id"] != bot_id or channel not in prompts or int(message["id"]) in api.deleted:
            continue
        per_channel[channel] += 1
        content = message["content"]
        replied = message.get("message_reference", {}).get("message_id") == prompts[channel]
        if replied and content.startswith(ANSWER_TEXT) and "effort ·" in content and "⚠️" not in content:
            whole.add(channel)
    return whole, per_channel


async def counted(bots: list[Bot], answers: int) -> list[dict[str, float]]:
    """Each process's answer outcomes from /metrics, once they add up to `answers` (bounded)."""
    outcomes: list[dict[str, float]] = []
    for _ in range(int(COUNTED_WITHIN_S / POLL_S)):
        outcomes = [
            {name: float(value) for name, value in OUTCOMES.findall(await bot.metrics())} for bot in bots
        ]
        if sum(o.get("complete", 0.0) for o in outcomes) >= answers:
            break
        await asyncio.sleep(POLL_S)
    return outcomes


async def watch_leases(
    database_url: str, pids: list[int], lowest: dict[int, float], done: asyncio.Event
) -> None:
    """Until `done`: the least time left (s) seen on each process's lease (its id holds the pid), in
    `lowest`; a lease renewed on time never has less than two thirds of it left."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        for _ in range(int(WHOLE_WITHIN_S / LEASE_POLL_S) + 1):
            rows = await connection.fetch(
                "SELECT instance_id, extract(epoch FROM expires_at - now())::float8 AS left_s"
                " FROM instance_leases"
            )
            for row in rows:
                for pid in pids:
                    if f"-{pid}-" in row["instance_id"]:
                        lowest[pid] = min(lowest.get(pid, float("inf")), row["left_s"])
            try:
                await asyncio.wait_for(done.wait(), LEASE_POLL_S)
                return
            except TimeoutError:
                pass
    finally:
        await connection.close()


def route(method: str, path: str) -> str:
    """A call's route without its ids: `PATCH /api/v10/channels/{id}/messages/{id}`."""
    return f"{method} {re.sub(r'/[0-9]+', '/{id}', path)}"


def metric(pattern: re.Pattern[str], text: str) -> float:
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


@dataclass(frozen=True, slots=True)
class Model:
    """The fake model API's process: where it listens, its pid, and how to ask its request count."""

    url: str
    pid: int
    control: Connection

    def requests(self) -> int:
        self.control.send(True)
        if not self.control.poll(10):
            raise RuntimeError("the fake model API does not answer")
        return self.control.recv()


async def run(answers: int, model: Model, database_url: str, workdir: Path) -> None:
    """Start the two instances against a fake Discord, measure one burst, stop them."""
    async with FakeDiscord() as api:
        alice, channels = build_world(api, answers)
        ports = free_ports(SHARDS)
        bots = [
            Bot(shard_id, ports[shard_id], workdir / f"shard-{shard_id}.log") for shard_id in range(SHARDS)
        ]
        try:
            for bot in bots:
                env = bot_environment(
                    bot.shard_id, bot.port, model_url=model.url, database_url=database_url, api=api
                )
                await bot.start(env)
            for bot in bots:
                await wait_http(f"http://127.0.0.1:{bot.port}/readyz", within_s=READY_WITHIN_S)
                await wait_readyz(bot.port, {str(bot.shard_id): True}, within_s=READY_WITHIN_S)
            await measure(api, bots, alice, channels, model, database_url)
        finally:
            codes = [await bot.stop() for bot in bots]
        print(f"exit codes after SIGTERM: {codes}")
        for bot in bots:
            count, samples = bot.problems()
            print(f"shard {bot.shard_id} logged {count} warning/error lines" + (":" if samples else ""))
            for sample in samples:
                print(f"    {sample}")


async def measure(
    api: FakeDiscord,
    bots: list[Bot],
    alice: dict[str, Any],
    channels: list[tuple[dict[str, Any], int]],
    model: Model,
    database_url: str,
) -> None:
    """Send every mention at once, wait (bounded) for the answers to be whole, print the numbers."""
    answers = len(channels)
    shard_of_channel = {channel["id"]: shard_id for channel, shard_id in channels}
    for bot in bots:
        bot.usage["before"] = usage_of(bot.pid)
    here_before, model_before = time.process_time(), usage_of(model.pid).cpu_s
    requests_before = model.requests()
    first_call = len(api.requests)
    lease_left: dict[int, float] = {}
    burst_over = asyncio.Event()
    leases = asyncio.create_task(
        watch_leases(database_url, [bot.pid for bot in bots], lease_left, burst_over)
    )
    started = time.monotonic()
    sent = await asyncio.gather(
        *(
            api.user_message(channel, alice, f"<@{api.bot_id}> question {n}")
            for n, (channel, _) in enumerate(channels)
        )
    )
    sent_s = time.monotonic() - started
    prompts = {message["channel_id"]: message["id"] for message in sent}
    whole_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}  # when a channel first showed a reply
    per_channel: Counter[str] = Counter()
    while len(whole_at) < answers and time.monotonic() - started < WHOLE_WITHIN_S:
        whole, per_channel = whole_replies(api, prompts)
        now = time.monotonic() - started
        for channel in whole - whole_at.keys():
            whole_at[channel] = now
        for channel in per_channel.keys() - seen_at.keys():
            seen_at[channel] = now
        await asyncio.sleep(POLL_S)
    wall_s = time.monotonic() - started
    # Then the 👍 / 👎 buttons, which wait behind every final text for the global budget.
    buttons_at = [len(buttons_shown(api, prompts))]
    while buttons_at[-1] < len(whole_at) and time.monotonic() - started < wall_s + BUTTONS_WITHIN_S:
        await asyncio.sleep(POLL_S)
        buttons_at.append(len(buttons_shown(api, prompts)))
    buttons_s = time.monotonic() - started
    burst_over.set()
    await leases
    outcomes = await counted(bots, answers)
    texts = [await bot.metrics() for bot in bots]
    for bot in bots:
        bot.usage["after"] = usage_of(bot.pid)
    here_s, model_s = time.process_time() - here_before, usage_of(model.pid).cpu_s - model_before
    model_requests = model.requests() - requests_before
    whole, per_channel = whole_replies(api, prompts)

    calls = api.requests[first_call:]
    per_second = Counter(int(call.at - started) for call in calls)
    busiest = max(per_second.items(), key=lambda item: item[1], default=(0, 0))
    limited = Counter(route(call.method, call.path) for call in api.rate_limited)
    times = sorted(whole_at.values())
    print(f"{answers} mentions sent in {sent_s:.2f} s over {len(prompts)} channels, {SHARDS} shards")
    print(
        f"whole answers: {len(whole)}/{answers} at the end ({len(whole_at)} were whole at some point);"
        f" last whole {max(times, default=float('nan')):.1f} s, median"
        f" {statistics.median(times) if times else float('nan'):.1f} s"
        f" (an answer streams for {ANSWER_S:.0f} s; the global budget allows {lower_bound_s(answers):.1f} s)"
    )
    seen = sorted(seen_at.values())
    print(
        f"first sign of an answer (a message in its channel): median"
        f" {statistics.median(seen) if seen else float('nan'):.1f} s,"
        f" last {max(seen, default=float('nan')):.1f} s"
    )
    extra = sum(count - 1 for count in per_channel.values() if count > 1)
    print(f"channels without a reply: {answers - len(per_channel)}; extra bot messages: {extra}")
    active = [metric(ACTIVE, text) for text in texts]
    print(f"model requests: {model_requests}; answers still streaming per instance: {active}")
    print(f"429s from the fake Discord: {len(api.rate_limited)}" + (f" {dict(limited)}" if limited else ""))
    print(
        f"Discord calls: {len(calls)} ({len(calls) / answers:.1f} per answer); busiest second:"
        f" {busiest[1]} calls (second {busiest[0]})"
    )
    routes = Counter(route(call.method, call.path) for call in calls)
    print("  by route: " + ", ".join(f"{name} {count}" for name, count in routes.most_common()))
    print(
        f"answers showing the feedback buttons: {buttons_at[0]} when the last was whole,"
        f" {buttons_at[-1]} at {buttons_s:.1f} s"
    )
    print(
        "shard | answers (whole / outcomes in /metrics) | takeovers | failed lease renewals"
        " | least lease time left | peak RSS | CPU, burst to last button | CPU per 1,000 tokens"
    )
    for bot, outcome, text in zip(bots, outcomes, texts, strict=True):
        mine = sum(1 for channel in whole if shard_of_channel[channel] == bot.shard_id)
        streamed = outcome.get("complete", 0.0) * TOKENS
        cpu_s = bot.usage["after"].cpu_s - bot.usage["before"].cpu_s
        per_k = cpu_s * 1000 / (streamed / 1000) if streamed else float("nan")
        shown = ", ".join(f"{name} {value:.0f}" for name, value in sorted(outcome.items()))
        print(
            f"{bot.shard_id:5d} | {mine} / {shown or 'none'} | {metric(TAKEOVERS, text):.0f}"
            f" | {metric(LEASE_FAILURES, text):.0f} | {lease_left.get(bot.pid, float('nan')):.1f} s"
            f" | {bot.usage['after'].peak_rss_mib:.0f} MiB"
            f" | {cpu_s:.1f} s | {per_k:.0f} ms"
        )
    cores = os.cpu_count() or 1
    print(
        f"CPU over the {buttons_s:.1f} s from the burst to the last button on {cores} cores:"
        f" fake Discord + this bench {here_s:.1f} s, fake model API {model_s:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=400)
    parser.add_argument("--logs", type=Path, help="keep the instances' logs in this directory")
    args = parser.parse_args()
    began = time.monotonic()
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=serve_model, args=(theirs,), daemon=True)
    process.start()
    try:
        if not ours.poll(READY_WITHIN_S):
            raise SystemExit("the fake model API did not start")
        assert process.pid is not None
        model = Model(f"http://127.0.0.1:{ours.recv()}/v1", process.pid, ours)
        left = asyncio.run(clear_redis())
        if left:
            print(f"deleted {left} seedbot keys a previous run left in {REDIS_URL}")
        with fresh_database("seedbot_bench") as database_url, tempfile.TemporaryDirectory() as workdir:
            logs = args.logs or Path(workdir)
            logs.mkdir(parents=True, exist_ok=True)
            asyncio.run(run(args.answers, model, database_url, logs))
        asyncio.run(clear_redis())
    finally:
        process.terminate()
        process.join(10)
    print(f"bench ran {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
