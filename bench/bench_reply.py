"""Reply engine benchmark: latency, edits and 429s at the platforms' published paces, CPU, memory.

Model answers are simulated streams (reasoning, then content at a steady token rate, in small bursts
as SSE reads deliver them); replies go to the in-memory surface, which enforces the published limits
(Discord 5 edits / 5 s per channel, 2,000 characters; Slack chat.update ~50 / min, 12,000 characters)
and answers 429 when they are exceeded. Runs in about 30-40 s.

    .venv/bin/python bench/bench_reply.py [--streams 500]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.llm.types import ContentDelta, Finish, ReasoningDelta, StreamEvent, Usage, UsageReport
from core.reply.pacing import EditPacer, PacerRegistry
from core.reply.streamer import ReplyStreamer
from core.reply.surface import PlatformLimits
from tests.fakes.memory_surface import MemorySurface

DISCORD = PlatformLimits("discord", 2000, edits_per_window=5, window_s=5.0)
SLACK = PlatformLimits("slack", 12000, edits_per_window=50, window_s=60.0, thinking_in_message=False)
TICK_S = 0.05  # one simulated network read


@dataclass
class Sample:
    tokens: int = 0
    first_visible_s: float = 0.0  # first content token -> the platform has it
    final_s: float = 0.0  # last content token -> final edit landed
    calls: int = 0  # posts + edits
    messages: int = 0
    rate_limited: int = 0


def answer_tokens(count: int, seed: int) -> list[str]:
    """Markdown-ish tokens: prose with paragraph breaks and a code block in the middle."""
    rng = random.Random(seed)
    vocabulary = [
        "the ",
        "model ",
        "streams ",
        "tokens ",
        "into ",
        "chat ",
        "edits ",
        "quickly ",
        "and ",
        "é ",
    ]
    tokens = [rng.choice(vocabulary) for _ in range(count)]
    for i in range(60, count, 90):
        tokens[i] = ".\n\n"
    middle = count // 2
    tokens[middle : middle + 40] = ["\n```python\n", *[f"x{i} = {i}\n" for i in range(38)], "```\n"]
    return tokens


async def model_stream(
    tokens: list[str], reasoning_s: float, tokens_per_s: float, last_token: list[float]
) -> AsyncIterator[StreamEvent]:
    per_tick = max(1, round(tokens_per_s * TICK_S))
    for _ in range(round(reasoning_s / TICK_S)):
        await asyncio.sleep(TICK_S)
        yield ReasoningDelta("weighing the options carefully ")
    for start in range(0, len(tokens), per_tick):
        await asyncio.sleep(TICK_S)
        for token in tokens[start : start + per_tick]:
            yield ContentDelta(token)
    last_token.append(time.monotonic())
    yield Finish("stop")
    yield UsageReport(Usage(completion_tokens=len(tokens)))


async def one_reply(
    surface: MemorySurface, pacer: EditPacer, tokens: list[str], reasoning_s: float, tokens_per_s: float
) -> Sample:
    streamer = ReplyStreamer(surface, pacer, show_reasoning=True)
    await streamer.begin()
    last_token: list[float] = []
    outcome = await streamer.consume(model_stream(tokens, reasoning_s, tokens_per_s, last_token))
    result = await streamer.finish(outcome, footer="medium effort · 9.9 s · 1,000 tokens · $0.0026")
    done = time.monotonic()
    stats = streamer.stats
    assert result.delivered and stats.first_token_at and stats.first_visible_at
    return Sample(
        tokens=len(tokens),
        first_visible_s=stats.first_visible_at - stats.first_token_at,
        final_s=done - last_token[0],
        calls=stats.posts + stats.edits,
        messages=len(result.refs),
        rate_limited=stats.rate_limited,
    )


async def run_replies(
    limits: PlatformLimits,
    *,
    channels: int,
    per_channel: int,
    tokens: int,
    tokens_per_s: float,
    reasoning_s: float = 1.0,
    latency_s: float = 0.0,
) -> list[Sample]:
    registry = PacerRegistry()
    replies = []
    for channel in range(channels):
        surface = MemorySurface(limits, channel=f"C{channel}", latency_s=latency_s)
        for reply in range(per_channel):
            replies.append(
                one_reply(
                    surface if reply == 0 else surface.sibling(),
                    registry.for_channel(limits, f"C{channel}"),
                    answer_tokens(tokens, seed=channel * 100 + reply),
                    reasoning_s,
                    tokens_per_s,
                )
            )
    return await asyncio.gather(*replies)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values_ms: list[float]) -> str:
    return f"p50 {quantile(values_ms, 0.5):8.2f} ms   p99 {quantile(values_ms, 0.99):8.2f} ms"


def report(title: str, samples: list[Sample]) -> None:
    first = [s.first_visible_s * 1000 for s in samples]
    final = [s.final_s * 1000 for s in samples]
    print(f"\n{title}  ({len(samples)} replies)")
    print(f"  first token -> first visible edit   {spread(first)}")
    print(f"  last token  -> final edit landed    {spread(final)}")
    calls = sum(s.calls for s in samples) / len(samples)
    messages = sum(s.messages for s in samples) / len(samples)
    tokens = sum(s.tokens for s in samples) / len(samples)
    print(f"  posts+edits per answer {calls:.1f} for {tokens:.0f} tokens in {messages:.1f} messages")
    print(f"  429s seen: {sum(s.rate_limited for s in samples)}")


async def cpu_per_thousand_tokens(streams: int, tokens: int) -> tuple[float, float]:
    """CPU ms per 1,000 tokens: the simulated model stream alone, and with the streamer."""

    async def drain(events: AsyncIterator[StreamEvent]) -> None:
        async for _ in events:
            pass

    started = time.process_time()
    await asyncio.gather(*(drain(model_stream(answer_tokens(tokens, i), 0, 200, [])) for i in range(streams)))
    baseline = time.process_time() - started
    started = time.process_time()
    await run_replies(
        DISCORD, channels=streams, per_channel=1, tokens=tokens, tokens_per_s=200, reasoning_s=0
    )
    total = time.process_time() - started
    scale = 1000 / (streams * tokens) * 1000
    return baseline * scale, total * scale


async def main(args: argparse.Namespace) -> None:
    print("Reply engine benchmark (in-memory surface enforcing the published limits)")

    report(
        "Discord 5 edits/5 s, instant surface, 40 channels x 1 reply, 800 tokens at 150 tok/s",
        await run_replies(DISCORD, channels=40, per_channel=1, tokens=800, tokens_per_s=150),
    )
    report(
        "Slack ~50 edits/min, instant surface, 40 channels x 1 reply, 800 tokens at 150 tok/s",
        await run_replies(SLACK, channels=40, per_channel=1, tokens=800, tokens_per_s=150),
    )
    report(
        "Busy Discord channels: 100 ms platform latency, 20 channels x 3 replies started together",
        await run_replies(DISCORD, channels=20, per_channel=3, tokens=800, tokens_per_s=150, latency_s=0.1),
    )

    baseline, total = await cpu_per_thousand_tokens(streams=50, tokens=2000)
    print("\nCPU per 1,000 streamed tokens (50 replies x 2,000 tokens at 200 tok/s)")
    print(f"  simulated model stream alone {baseline:6.2f} ms;  with the reply engine {total:6.2f} ms")
    print(f"  reply engine's share        {total - baseline:6.2f} ms")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = time.process_time()
    wall_before = time.monotonic()
    samples = await run_replies(DISCORD, channels=args.streams, per_channel=1, tokens=1000, tokens_per_s=100)
    cpu = time.process_time() - cpu_before
    wall = time.monotonic() - wall_before
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report(
        f"{args.streams} concurrent replies in one process (Discord, 1,000 tokens at 100 tok/s each)", samples
    )
    tokens = sum(s.tokens for s in samples)
    print(f"  wall {wall:.1f} s, CPU {cpu:.2f} s ({cpu / wall * 100:.0f}% of one core)")
    print(f"  CPU per 1,000 tokens {cpu / tokens * 1e6:.2f} ms (model simulation included)")
    print(f"  peak RSS {rss_after / 1024:.1f} MiB (before the run {rss_before / 1024:.1f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=500, help="concurrent replies in the last run")
    asyncio.run(main(parser.parse_args()))
