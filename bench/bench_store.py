"""Store benchmark: turn appends, context for a long conversation, /cost over a big ledger, budget holds.

    .venv/bin/python bench/bench_store.py [--ledger-rows 1000000] [--postgres-url postgresql://…]

Runs the same operations on a fresh SQLite file in a temporary directory and on a fresh PostgreSQL
database (created on 127.0.0.1:5432 and dropped after, unless --postgres-url names an empty one), and
prints one table with both side by side (a few minutes at most).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from core.config import Settings, load_settings
from core.context import NewTurn, assemble_context
from core.costs import BudgetPolicy, spend_report, worst_case_cost
from core.llm.types import TextPart
from core.models import AttachmentMeta, ConversationKey
from core.store import open_store
from core.store.base import LedgerEntry, Reservation, Store, UsageFilter

NOW = datetime.now(UTC)
YEAR = timedelta(days=365)
PHOTO = AttachmentMeta("image", "image/jpeg", 345_678, "ab" * 32, "photo.jpg", "F0123")
ANSWER = "Here is a reasonably long answer with some detail. " * 20
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

Row = tuple[str, str]  # (measurement, result)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {ms(statistics.median(ordered))}, p99 {ms(p99)} (n={len(ordered)})"


async def timed(action: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


async def bench_appends(store: Store, turns: int) -> list[Row]:
    key = ConversationKey("slack", "T1", "C1", "append")
    messages, whole_turns = [], []
    for n in range(turns):
        started = time.perf_counter()
        await store.add_message(
            key, "user", "U1", "Ann", f"question {n}", attachments=[PHOTO], platform_message_id=f"q{n}"
        )
        asked = time.perf_counter()
        reply = await store.add_message(key, "assistant", "B1", "Seed", "", status="streaming")
        await store.update_message(reply, text=ANSWER, status="complete", platform_message_id=f"a{n}")
        done = time.perf_counter()
        messages.append(asked - started)
        whole_turns.append(done - started)
    return [
        ("append a message (with 1 attachment)", percentiles(messages)),
        ("append a turn (prompt, streaming reply, final update)", percentiles(whole_turns)),
    ]


async def bench_context(store: Store, settings: Settings) -> list[Row]:
    key = ConversationKey("slack", "T1", "C2", "long")
    for n in range(500):
        attachments = [PHOTO] if n % 10 == 0 else []
        await store.add_message(
            key, "user", f"U{n % 3}", f"user{n % 3}", f"question {n} " * 10, attachments=attachments
        )
        await store.add_message(key, "assistant", "B1", "Seed", ANSWER)
    turn = NewTurn("U1", "user1", [TextPart(text="and what about the last one?")])

    async def load_and_assemble() -> None:
        history = await store.conversation(key, limit=1000)
        assemble_context(history, turn, settings=settings, media_parts=lambda meta: None)

    history = await store.conversation(key, limit=1000)
    context = assemble_context(history, turn, settings=settings)
    loading = await timed(lambda: store.conversation(key, 1000), 30)
    return [
        (
            f"context for a 500-turn conversation (1,000 messages, ~{context.estimated_prompt_tokens:,}"
            f" tokens, {context.used_turns} used): load + assemble",
            percentiles(await timed(load_and_assemble, 30)),
        ),
        ("  of which loading 1,000 messages", percentiles(loading)),
    ]


def ledger_rows(first: int, count: int, total: int, rng: random.Random) -> list[LedgerEntry]:
    """Rows `first` .. `first + count` of a ledger of `total` calls spread evenly over the past year."""
    workspaces = ["T1", "T2", "T3"]
    users = [
        (workspaces[u % 3], f"U{u:03d}", [f"C{(u * 7 + k) % 30:02d}" for k in range(3)]) for u in range(300)
    ]
    rows = []
    for n in range(first, first + count):
        workspace, user, channels = users[rng.randrange(len(users))]
        prompt, completion = rng.randrange(200, 20_000), rng.randrange(50, 4_000)
        rows.append(
            LedgerEntry(
                request_id=f"bench-{n}",
                platform="slack",
                workspace=workspace,
                channel=rng.choice(channels),
                user=user,
                model="bytedance/dola-seed-2-0-lite",
                effort="medium",
                prompt_tokens=prompt,
                completion_tokens=completion,
                reasoning_tokens=completion // 2,
                cached_tokens=prompt // 4,
                usd=Decimal(prompt * 325 + completion * 2600) / Decimal(1_000_000_000),
                cost_source="reported",
                ttft_s=0.9,
                latency_s=4.5,
                outcome="ok",
                at=NOW - YEAR + YEAR * n / total,
            )
        )
    return rows


async def bench_reports(store: Store, settings: Settings, rows: int) -> list[Row]:
    rng = random.Random(7)
    started = time.perf_counter()
    batch = 20_000
    for offset in range(0, rows, batch):
        recorded = await store.record_usage(*ledger_rows(offset, min(batch, rows - offset), rows, rng))
        assert recorded == min(batch, rows - offset)
    loaded = time.perf_counter() - started
    results = [
        (
            f"ledger: record {rows:,} rows in batches of {batch:,}",
            f"{loaded:.1f} s ({rows / loaded:,.0f} rows/s)",
        )
    ]
    key = ConversationKey("slack", "T1", "C01", "")
    checks: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (
            "/cost me today",
            lambda: spend_report(store, settings, key=key, user="U000", scope="me", period="today"),
        ),
        (
            "/cost channel 30d",
            lambda: spend_report(store, settings, key=key, user="U000", scope="channel", period="30d"),
        ),
        (
            "/cost workspace all + top spenders",
            lambda: spend_report(
                store, settings, key=key, user="U000", scope="workspace", period="all", include_top=True
            ),
        ),
        ("totals, whole platform, all time", lambda: store.usage_totals(UsageFilter("slack"))),
        ("top workspaces, all time", lambda: store.usage_breakdown(UsageFilter("slack"), "workspace")),
    ]
    for label, check in checks:
        results.append((f"{label}, {rows:,}-row ledger (goal < 100 ms)", percentiles(await timed(check, 20))))
    return results


async def bench_reservations(store: Store, settings: Settings, concurrency: int, per_task: int) -> list[Row]:
    policy = BudgetPolicy(settings, store)
    worst = worst_case_cost(settings, 20_000)
    latencies: list[float] = []
    granted = 0

    async def client(task: int) -> None:
        nonlocal granted
        key = ConversationKey("discord", f"G{task % 4}", f"C{task}", "")
        for n in range(per_task):
            started = time.perf_counter()
            hold = await policy.reserve(key, f"U{task}", worst)
            latencies.append(time.perf_counter() - started)
            if isinstance(hold, Reservation):
                granted += 1
                entry = LedgerEntry(
                    f"hold-{task}-{n}", "discord", key.workspace, key.channel, f"U{task}", "m", "low",
                    1000, 100, 0, 0, worst / 10, "estimated", 0.5, 1.0, "ok",
                )  # fmt: skip
                await policy.settle(hold, entry)

    started = time.perf_counter()
    await asyncio.gather(*(client(task) for task in range(concurrency)))
    elapsed = time.perf_counter() - started
    total = concurrency * per_task
    return [
        (
            f"budget holds, {concurrency} concurrent requests ({total:,} reserve + settle)",
            f"{total / elapsed:,.0f}/s ({granted:,} granted)",
        ),
        ("  reserve latency", percentiles(latencies)),
    ]


async def run_all(url: str, ledger: int) -> list[Row]:
    settings = load_settings(
        _env_file=None,
        DATABASE_URL=url,
        SEEDBOT_USER_DAILY_BUDGET_USD="1000",
        SEEDBOT_WORKSPACE_MONTHLY_BUDGET_USD="100000",
    )
    store = await open_store(settings)
    try:
        return [
            *await bench_appends(store, 2_000),
            *await bench_context(store, settings),
            *await bench_reports(store, settings, ledger),
            *await bench_reservations(store, settings, concurrency=200, per_task=20),
        ]
    finally:
        await store.close()


@asynccontextmanager
async def postgres_database(given: str | None) -> AsyncIterator[str]:
    """`given`, or a database created for this run and dropped after."""
    if given:
        yield given
        return
    name = f"seedbot_bench_{os.getpid()}"
    server = await asyncpg.connect(SERVER_URL)
    try:
        await server.execute(f"CREATE DATABASE {name}")
        try:
            yield SERVER_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            await server.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await server.close()


async def postgres_size(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()


def table(results: dict[str, list[Row]]) -> str:
    backends = list(results)
    labels = [label for label, _ in results[backends[0]]]
    by_backend = {backend: dict(rows) for backend, rows in results.items()}
    lines = [f"| measurement | {' | '.join(backends)} |", "|---" * (len(backends) + 1) + "|"]
    lines += [f"| {label} | {' | '.join(by_backend[b][label] for b in backends)} |" for label in labels]
    return "\n".join(lines)


async def main(ledger: int, postgres_url: str | None) -> None:
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        results["SQLite (WAL)"] = await run_all(f"sqlite:///{path}", ledger)
        results["SQLite (WAL)"].append(("database size", f"{path.stat().st_size / 1e6:,.0f} MB"))
    async with postgres_database(postgres_url) as url:
        results["PostgreSQL 15"] = await run_all(url, ledger)
        results["PostgreSQL 15"].append(("database size", f"{await postgres_size(url) / 1e6:,.0f} MB"))
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger-rows", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database (default: create one)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.ledger_rows, arguments.postgres_url))
