"""Streaming throughput of ChatClient versus the official `openai` SDK on the same loopback server.

The server runs in a child process (so its CPU is not counted) and streams N content chunks in the
exact AI/ML wire format as fast as the socket takes them. Each client consumes the whole stream;
we report chunks/s (wall) and CPU microseconds per chunk (this process only).

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/bench_client.py [--chunks 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time

from aiohttp import web

from core.config import Settings
from core.llm.client import ChatClient
from core.llm.types import ChatRequest, ContentDelta, UserMessage

MODEL = "bytedance/dola-seed-2-0-lite"


def render_stream(chunks: int) -> bytes:
    def line(payload: dict | str) -> bytes:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        return f"data: {text}\n\n".encode()

    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "seed"}
    parts = [line({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    token = line({**base, "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]})
    parts.extend([token] * chunks)
    parts.append(line({**base, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]}))
    usage = {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": chunks + 5}
    parts.append(line({**base, "choices": [], "usage": usage, "meta": {"usage": {"usd_spent": 0.01}}}))
    parts.append(line("[DONE]"))
    return b"".join(parts)


def serve(port: int, chunks: int) -> None:
    body = render_stream(chunks)

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        step = 64 * 1024
        for start in range(0, len(body), step):
            await response.write(body[start : start + step])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("bench server did not start")


async def run_seedbot(base_url: str) -> int:
    settings = Settings(_env_file=None, aiml_api_key="bench", aiml_base_url=base_url)
    client = ChatClient(settings)
    request = ChatRequest(model=MODEL, messages=[UserMessage(content="go")], max_tokens=100)
    count = 0
    async with client.stream(request) as stream:
        async for event in stream:
            if isinstance(event, ContentDelta):
                count += 1
    await client.aclose()
    return count


async def run_openai(base_url: str) -> int:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="bench", base_url=base_url)
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "go"}],
        max_tokens=100,
        stream=True,
        stream_options={"include_usage": True},
    )
    count = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            count += 1
    await client.close()
    return count


def measure(name: str, runner, base_url: str, chunks: int, rounds: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        count = asyncio.run(runner(base_url))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if count != chunks:
            raise SystemExit(f"{name}: got {count} chunks, expected {chunks}")
        result = {"chunks_per_s": chunks / wall, "cpu_us_per_chunk": cpu / chunks * 1e6, "wall_s": wall}
        if best is None or result["chunks_per_s"] > best["chunks_per_s"]:
            best = result
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port, args.chunks), daemon=True)
    server.start()
    try:
        wait_for(port)
        base_url = f"http://127.0.0.1:{port}/v1"
        rows = [("seedbot ChatClient", measure("seedbot", run_seedbot, base_url, args.chunks, args.rounds))]
        try:
            rows.append(("openai SDK", measure("openai", run_openai, base_url, args.chunks, args.rounds)))
        except ImportError:
            print("openai SDK not installed (pip install -e '.[bench]'); skipping the comparison")
    finally:
        server.terminate()
        server.join(5)
    print(f"{args.chunks:,} chunks over loopback, best of {args.rounds} (cpu: {os.cpu_count()} cores)")
    print(f"{'client':<20} {'chunks/s':>12} {'CPU µs/chunk':>14} {'wall s':>8}")
    for name, row in rows:
        rate, cpu, wall = row["chunks_per_s"], row["cpu_us_per_chunk"], row["wall_s"]
        print(f"{name:<20} {rate:>12,.0f} {cpu:>14.1f} {wall:>8.2f}")


if __name__ == "__main__":
    main()
