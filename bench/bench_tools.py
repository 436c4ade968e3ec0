"""Tool loop benchmark: what a round of tool calls adds to an answer, in CPU and in latency.

The same ChatService (SQLite store, ledger, budgets) answers into an in-memory surface, against the fake
model API running in another process (so its CPU is not counted): once plainly, once with one round of
`current_time` before the answer. The model's text is the same length both times. CPU is this process's
time per answer; the loop's overhead per round is the difference (a second model call with its own
reservation and ledger row, the tool, the step shown and the messages built). Runs in about 20 s.

    .venv/bin/python bench/bench_tools.py [--answers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings
from core.models import ConversationKey, Turn
from core.reply.surface import PlatformLimits
from core.service import ChatService
from tests.fakes.memory_surface import MemorySurface
from tests.fakes.model_server import API_KEY, FakeModelServer, Script, tool_call, tool_round

LIMITS = PlatformLimits(name="bench", max_message_chars=12_000, edits_per_window=10_000, window_s=1.0)
ANSWER = "The time in Tokyo is 21:00. " * 8


def serve(answers: int, port_out: Connection) -> None:
    """The fake model API in its own process: `answers` plain answers, then as many tool loops."""

    async def run() -> None:
        async with FakeModelServer(validate=False) as server:
            server.enqueue(*(Script(content=ANSWER, chunk_chars=16) for _ in range(answers)))
            for _ in range(answers):
                server.enqueue(
                    tool_round(tool_call("current_time", {"timezone": "Asia/Tokyo"})),
                    Script(content=ANSWER, chunk_chars=16),
                )
            port_out.send(server.port)
            await asyncio.Event().wait()

    asyncio.run(run())


async def measure(service: ChatService, answers: int, label: str) -> tuple[list[float], float]:
    """Wall seconds of each answer, and CPU seconds per answer."""
    walls = []
    cpu_start = time.process_time()
    for index in range(answers):
        turn = Turn(
            key=ConversationKey("bench", "W1", "C1", f"{label}-{index}"),
            user_id="U1",
            user_name="bench",
            text="What time is it in Tokyo?",
        )
        started = time.perf_counter()
        outcome = await service.answer(turn, MemorySurface(LIMITS))
        walls.append(time.perf_counter() - started)
        assert outcome.status == "complete", outcome
    return walls, (time.process_time() - cpu_start) / answers


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main(answers: int) -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(answers, sender), daemon=True)
    server.start()
    port = receiver.recv()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            aiml_api_key=API_KEY,
            aiml_base_url=f"http://127.0.0.1:{port}/v1",
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            footer=True,
        )
        service = await ChatService.open(settings)
        try:
            await measure(service, 3, "warm-up")  # imports, first connections, SQLite pages
            plain_walls, plain_cpu = await measure(service, answers - 3, "plain")
            await measure(service, 3, "warm-up-tools")
            tool_walls, tool_cpu = await measure(service, answers - 3, "tools")
        finally:
            await service.close()
            server.kill()
    print(f"{answers - 3} answers each, fake model API in another process, SQLite store")
    runs = (("plain answer", plain_walls, plain_cpu), ("one tool round", tool_walls, tool_cpu))
    for name, walls, cpu in runs:
        p99 = statistics.quantiles(walls, n=100)[98]
        print(f"{name:>15}: p50 {ms(statistics.median(walls))}, p99 {ms(p99)}, CPU {ms(cpu)} per answer")
    added = statistics.median(tool_walls) - statistics.median(plain_walls)
    print(f"loop overhead per round: {ms(tool_cpu - plain_cpu)} CPU, {ms(added)} added to the p50 latency")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=200)
    asyncio.run(main(parser.parse_args().answers))
